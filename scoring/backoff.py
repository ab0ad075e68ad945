"""Retrying what depends on the chain: exponential backoff with jitter, clear logs, no crash.

``Backoff`` yields the delays (initial, doubling, capped, ±10 % jitter so a fleet of validators
does not retry in step). ``retry_chain`` runs an operation until it succeeds or ``stop`` is set,
logging every failure with what failed, the attempt number and when it will try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.chain import ChainUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)


class Backoff:
    def __init__(self, *, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.initial_s * 2.0**self.attempt, self.max_s)
        self.attempt += 1
        return base * self.rng.uniform(0.9, 1.1)

    def reset(self) -> None:
        self.attempt = 0


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    return stop.is_set()


async def retry_chain(
    what: str,
    operation: Callable[[], Awaitable[T]],
    *,
    stop: asyncio.Event,
    backoff: Backoff,
) -> T | None:
    """``operation()`` until it succeeds (its result) or ``stop`` is set (None).

    Only ``ChainUnavailable`` is retried: anything else is a bug and propagates."""
    backoff.reset()
    while not stop.is_set():
        try:
            result = await operation()
        except ChainUnavailable as exc:
            delay = backoff.next_delay()
            log.warning(
                "%s: chain unreachable (attempt %d): %s; retrying in %.1fs",
                what,
                backoff.attempt,
                exc,
                delay,
            )
            if await sleep_or_stop(stop, delay):
                return None
            continue
        if backoff.attempt:
            log.info("%s: chain reachable again after %d failed attempt(s)", what, backoff.attempt)
        backoff.reset()
        return result
    return None
