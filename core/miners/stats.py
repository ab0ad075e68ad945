"""Live per-miner statistics that routing reads and every dispatch outcome updates.

Keyed by ``(task, hotkey)`` (a contender: one miner serving one task). For each key: requests in
flight, EWMA time to first token, EWMA work rate (tokens/s or steps/s), an EWMA of the error
indicator, the cool-down deadline and the last outcome.

Cool-down: after a failure the miner is skipped for ``base × 2^(consecutive failures − 1)``
seconds, capped at ``max``; a 429 cools it down for its ``Retry-After`` (within the same bounds);
a success clears it. A cancelled call (the client went away), an error of ours, and a request
the miner refused as invalid (the customer's fault: ``REQUEST_REFUSED``) are no evidence either
way.

``MinerStats`` is the interface. Reads (``snapshot``, ``available``) and writes are synchronous so
the request path never waits on I/O; ``InProcessStats`` keeps everything in this process (tests,
the scoring process). ``core.miners.shared_stats.SharedStats`` wraps one and shares it across
gateway replicas through Redis in the background.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    OK = "ok"
    CONNECT_ERROR = "connect_error"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    REJECTED = "rejected"  # a 4xx other than 429: bad signature, stake gate, unknown task
    # 400 / 413 / 422: the miner says the request itself is invalid. An organic request's fault
    # (not counted against the miner, not retried elsewhere); the synthetic sender counts it as
    # REJECTED, since the validator built that request itself.
    REQUEST_REFUSED = "request_refused"
    BAD_RESPONSE = "bad_response"  # malformed, oversized or inconsistent output
    MIDSTREAM_ERROR = "midstream_error"  # failed after the first token
    CANCELLED = "cancelled"  # the client went away: not the miner's fault
    INTERNAL_ERROR = "internal_error"  # a bug on our side: not the miner's fault either


# Outcomes that say nothing about the miner: not counted at all.
NEUTRAL = frozenset({Outcome.CANCELLED, Outcome.INTERNAL_ERROR, Outcome.REQUEST_REFUSED})

# Outcomes that count against a miner (error rate, cool-down).
FAILURES = frozenset(
    {
        Outcome.CONNECT_ERROR,
        Outcome.TIMEOUT,
        Outcome.RATE_LIMITED,
        Outcome.SERVER_ERROR,
        Outcome.REJECTED,
        Outcome.BAD_RESPONSE,
        Outcome.MIDSTREAM_ERROR,
    }
)

MinerKey = tuple[str, str]  # (task id, miner hotkey)


class MinerSnapshot:
    """A copy of one miner's live numbers (``None``: no observation yet)."""

    __slots__ = (
        "consecutive_failures",
        "cooldown_until",
        "error_rate",
        "in_flight",
        "last_outcome",
        "rate",
        "requests",
        "ttft_s",
        "updated_at",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.ttft_s: float | None = None
        self.rate: float | None = None
        self.error_rate = 0.0
        self.cooldown_until = 0.0
        self.consecutive_failures = 0
        self.last_outcome: Outcome | None = None
        self.requests = 0
        self.updated_at = 0.0  # monotonic time of the last recorded outcome

    def copy(self) -> MinerSnapshot:
        other = MinerSnapshot()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other


class MinerStats(Protocol):
    def snapshot(self, key: MinerKey) -> MinerSnapshot:
        """The live numbers (a read-only view; do not mutate)."""

    def available(self, key: MinerKey, now: float) -> bool:
        """Not cooled down at monotonic time ``now``."""

    def acquire(self, key: MinerKey) -> None:
        """A call to the miner starts (in-flight + 1)."""

    def release(
        self,
        key: MinerKey,
        outcome: Outcome,
        *,
        ttft_s: float | None = None,
        units: float = 0.0,
        duration_s: float | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """The call ended (in-flight − 1) with ``outcome``; ``units`` of work (tokens or steps)
        delivered over ``duration_s`` after the first token."""


class InProcessStats:
    """``MinerStats`` for one gateway process."""

    def __init__(
        self,
        *,
        cooldown_base_s: float = 2.0,
        cooldown_max_s: float = 120.0,
        alpha: float = 0.2,
        error_alpha: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_max_s = cooldown_max_s
        self.alpha = alpha
        self.error_alpha = error_alpha
        self._clock = clock
        self._entries: dict[MinerKey, MinerSnapshot] = {}
        self._empty = MinerSnapshot()

    def snapshot(self, key: MinerKey) -> MinerSnapshot:
        return self._entries.get(key, self._empty)

    def available(self, key: MinerKey, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is None or entry.cooldown_until <= now

    def entries(self) -> list[tuple[MinerKey, MinerSnapshot]]:
        """Every miner observed so far (live objects: read, do not keep)."""
        return list(self._entries.items())

    def _entry(self, key: MinerKey) -> MinerSnapshot:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = MinerSnapshot()
        return entry

    def acquire(self, key: MinerKey) -> None:
        self._entry(key).in_flight += 1

    def release(
        self,
        key: MinerKey,
        outcome: Outcome,
        *,
        ttft_s: float | None = None,
        units: float = 0.0,
        duration_s: float | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        entry = self._entry(key)
        entry.in_flight = max(0, entry.in_flight - 1)
        if outcome in NEUTRAL:
            return
        entry.requests += 1
        entry.last_outcome = outcome
        now = entry.updated_at = self._clock()
        if ttft_s is not None:
            entry.ttft_s = self._ewma(entry.ttft_s, ttft_s, self.alpha)
        if units > 0 and duration_s is not None and duration_s > 0:
            entry.rate = self._ewma(entry.rate, units / duration_s, self.alpha)
        failed = outcome in FAILURES
        entry.error_rate += self.error_alpha * ((1.0 if failed else 0.0) - entry.error_rate)
        if not failed:
            entry.consecutive_failures = 0
            entry.cooldown_until = 0.0
            return
        if outcome is Outcome.RATE_LIMITED:
            wait = retry_after_s if retry_after_s is not None else self.cooldown_base_s
        else:
            entry.consecutive_failures += 1
            wait = self.cooldown_base_s * 2.0 ** min(entry.consecutive_failures - 1, 30)
        wait = min(max(wait, 0.0), self.cooldown_max_s)
        entry.cooldown_until = max(entry.cooldown_until, now + wait)

    @staticmethod
    def _ewma(previous: float | None, value: float, alpha: float) -> float:
        return value if previous is None else previous + alpha * (value - previous)
