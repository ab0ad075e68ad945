"""Whether an engine can serve right now, asked cheaply.

Engines that depend on something outside the process (a forwarded upstream server) implement
``HealthReporting``; the miner's ``/healthz`` asks every engine through ``engine_healthy`` (an
engine without the method is healthy while it runs). ``CachedProbe`` bounds the cost: one probe
at a time, and its answer is reused for ``ttl_s`` seconds, so a busy ``/healthz`` never turns
into a storm of requests to the upstream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class HealthReporting(Protocol):
    async def healthy(self) -> bool:
        """False when the engine cannot serve now (its upstream does not answer)."""


async def engine_healthy(engine: object) -> bool:
    if isinstance(engine, HealthReporting):
        return await engine.healthy()
    return True


class CachedProbe:
    """``probe`` (True: healthy; an exception counts as False) at most once per ``ttl_s``;
    callers that arrive while a probe runs wait for that one."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self.ttl_s = ttl_s
        self._clock = clock
        self._answer = False
        self._checked_at: float | None = None
        self._running: asyncio.Future[bool] | None = None
        self.probes = 0

    async def healthy(self) -> bool:
        if self._checked_at is not None and self._clock() - self._checked_at < self.ttl_s:
            return self._answer
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._running)

    async def _run(self) -> bool:
        self.probes += 1
        try:
            answer = await self._probe()
        except Exception:  # noqa: BLE001 - whatever the probe raises, the upstream is not fine
            answer = False
        self._answer, self._checked_at, self._running = answer, self._clock(), None
        return answer
