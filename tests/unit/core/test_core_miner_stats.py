"""Live miner stats: in-flight, EWMAs, error rate, exponential capped cool-down."""

from __future__ import annotations

import pytest

from core.miners import InProcessStats, Outcome

KEY = ("task", "hotkey")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cooldown_doubles_and_is_capped() -> None:
    clock = Clock()
    stats = InProcessStats(cooldown_base_s=2.0, cooldown_max_s=10.0, clock=clock)
    waits = []
    for _ in range(5):
        stats.acquire(KEY)
        stats.release(KEY, Outcome.SERVER_ERROR)
        waits.append(stats.snapshot(KEY).cooldown_until - clock.now)
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert not stats.available(KEY, clock.now + 9.9)
    assert stats.available(KEY, clock.now + 10.0)


def test_success_clears_the_cooldown() -> None:
    clock = Clock()
    stats = InProcessStats(clock=clock)
    stats.release(KEY, Outcome.TIMEOUT)
    stats.release(KEY, Outcome.OK, ttft_s=0.2, units=10, duration_s=0.5)
    snap = stats.snapshot(KEY)
    assert snap.consecutive_failures == 0 and stats.available(KEY, clock.now)
    assert snap.rate == pytest.approx(20.0) and snap.ttft_s == pytest.approx(0.2)


def test_rate_limited_uses_retry_after_within_bounds() -> None:
    clock = Clock()
    stats = InProcessStats(cooldown_base_s=1.0, cooldown_max_s=30.0, clock=clock)
    stats.release(KEY, Outcome.RATE_LIMITED, retry_after_s=7)
    assert stats.snapshot(KEY).cooldown_until == clock.now + 7
    stats.release(KEY, Outcome.RATE_LIMITED, retry_after_s=3600)
    assert stats.snapshot(KEY).cooldown_until == clock.now + 30
    assert stats.snapshot(KEY).consecutive_failures == 0


def test_cancelled_is_no_evidence() -> None:
    stats = InProcessStats()
    stats.acquire(KEY)
    stats.acquire(KEY)
    stats.release(KEY, Outcome.CANCELLED)
    stats.release(KEY, Outcome.INTERNAL_ERROR)
    snap = stats.snapshot(KEY)
    assert snap.in_flight == 0 and snap.requests == 0 and snap.error_rate == 0


def test_ewmas_and_error_rate() -> None:
    stats = InProcessStats(alpha=0.5, error_alpha=0.5)
    stats.release(KEY, Outcome.OK, ttft_s=1.0)
    stats.release(KEY, Outcome.OK, ttft_s=3.0)
    stats.release(KEY, Outcome.BAD_RESPONSE)
    snap = stats.snapshot(KEY)
    assert snap.ttft_s == pytest.approx(2.0)
    assert snap.error_rate == pytest.approx(0.5)
    assert snap.last_outcome is Outcome.BAD_RESPONSE
    assert stats.snapshot(("other", "x")).in_flight == 0
