"""Bounded shutdown steps: a process must stop even when one of its dependencies hangs.

``push_bounded(stack, "name", close)`` registers ``close`` on an ``AsyncExitStack`` like
``push_async_callback``, but gives it ``timeout_s``; a step that overruns is abandoned with a
warning naming it, and the remaining steps still run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

log = logging.getLogger(__name__)

STEP_TIMEOUT_S = 10.0


def push_bounded(
    stack: AsyncExitStack,
    name: str,
    close: Callable[[], Awaitable[object]],
    *,
    timeout_s: float = STEP_TIMEOUT_S,
) -> None:
    async def bounded() -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await close()
        except TimeoutError:
            log.warning("shutdown: %s did not finish within %.0fs; going on", name, timeout_s)

    stack.push_async_callback(bounded)
