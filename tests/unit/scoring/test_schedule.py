"""Synthetic schedule: counts, even spacing with bounded jitter, organic volume counted."""

from __future__ import annotations

import pytest

from scoring.synthetic import plan as s


def test_request_count() -> None:
    assert s.request_count(2400, 300) == 8
    assert s.request_count(2401, 300) == 9
    assert s.request_count(24, 10) == 3
    assert s.request_count(0.5, 300) == 1  # a small quota is still tested once
    assert s.request_count(0, 300) == 0
    assert s.request_count(-5, 300) == 0
    assert s.request_count(float("inf"), 300) == 0
    assert s.request_count(100, 0) == 0


def test_slots_are_evenly_spaced_without_jitter() -> None:
    times = s.slot_times(start=1000, period_s=400, count=3, jitter=0.0, seed=1)
    assert times == [1100, 1200, 1300]
    assert s.slot_times(start=0, period_s=100, count=0, jitter=0.2, seed=1) == []
    assert s.slot_times(start=0, period_s=100, count=1, jitter=0.0, seed=1) == [50]


def test_jitter_stays_within_its_share_of_the_spacing_and_is_reproducible() -> None:
    count, period = 50, 1800.0
    spacing = period / (count + 1)
    times = s.slot_times(start=0, period_s=period, count=count, jitter=0.5, seed=7)
    ideal = [(index + 1) * spacing for index in range(count)]
    assert all(abs(t - i) <= 0.25 * spacing + 1e-9 for t, i in zip(times, ideal, strict=True))
    assert times != ideal
    assert all(0 < t < period for t in times)
    assert times == s.slot_times(start=0, period_s=period, count=count, jitter=0.5, seed=7)
    assert times != s.slot_times(start=0, period_s=period, count=count, jitter=0.5, seed=8)


def test_each_contender_gets_its_own_seed() -> None:
    assert s.contender_seed(1, "t", "a") == s.contender_seed(1, "t", "a")
    assert len({s.contender_seed(1, "t", h) for h in "abcdef"}) == 6
    assert s.contender_seed(1, "t", "a") != s.contender_seed(2, "t", "a")


def test_due_and_needed_with_organic_volume() -> None:
    times = [100.0, 200.0, 300.0, 400.0]
    assert [s.due_count(times, now) for now in (0, 100, 250, 1000)] == [0, 1, 2, 4]
    assert s.covered(0, 300) == 0
    assert s.covered(899, 300) == 2
    assert s.covered(900, 300) == 3
    assert s.needed(4, 0, 300) == 4
    assert s.needed(4, 650, 300) == 2  # two requests' worth of organic volume
    assert s.needed(1, 5000, 300) == 0


@pytest.mark.parametrize(
    ("quota", "vpr", "period"), [(120_000 * 0.04, 300, 1800), (800 * 0.8, 10, 60)]
)
def test_whole_quota_is_scheduled_inside_the_period(
    quota: float, vpr: float, period: float
) -> None:
    count = s.request_count(quota, vpr)
    times = s.slot_times(start=0, period_s=period, count=count, jitter=0.25, seed=3)
    assert len(times) == count and count * vpr >= quota
    assert s.due_count(times, period) == count
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    spacing = period / (count + 1)
    assert all(0.7 * spacing <= gap <= 1.3 * spacing for gap in gaps)
