"""SPEC §6 formulas against hand-computed values, including the edge cases."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from scoring import formulas as f


def test_clamp_capacity() -> None:
    assert f.clamp_capacity(-5, 100) == 0
    assert f.clamp_capacity(150, 100) == 100
    assert f.clamp_capacity(42.5, 100) == 42.5
    assert f.clamp_capacity(float("nan"), 100) == 0


def test_quota_multiplier_distribution() -> None:
    rng = random.Random(7)
    draws = Counter(f.draw_quota_multiplier(rng) for _ in range(200_000))
    assert set(draws) == {0.04, 0.08, 0.12, 0.8}
    assert draws[0.04] / 200_000 == pytest.approx(0.5, abs=0.01)
    assert draws[0.08] / 200_000 == pytest.approx(0.4, abs=0.01)
    assert draws[0.12] / 200_000 == pytest.approx(0.095, abs=0.005)
    assert draws[0.8] / 200_000 == pytest.approx(0.005, abs=0.002)
    assert f.quota_volume(1000, 0.08) == pytest.approx(80)


def test_period_score_hand_computed() -> None:
    # 10 requests: 7 good, 2 rate limited, 1 failed; capacity 1000, consumed 100 → unq 0.9
    # 0.7 × (1 − 0.2·0.9) × (1 − 0.1·0.9) = 0.7 × 0.82 × 0.91 = 0.52234
    score = f.period_score(capacity=1000, consumed=100, requests=10, rate_limited=2, failed=1)
    assert score == pytest.approx(0.52234)


def test_period_score_forgives_rate_limits_after_capacity_is_used() -> None:
    # all capacity consumed → unq 0 → only `good` counts
    score = f.period_score(capacity=100, consumed=100, requests=10, rate_limited=5, failed=0)
    assert score == pytest.approx(0.5)


def test_period_score_edge_cases() -> None:
    assert f.period_score(capacity=100, consumed=0, requests=0, rate_limited=0, failed=0) is None
    assert f.period_score(capacity=0, consumed=0, requests=5, rate_limited=0, failed=0) is None
    # all failures: good = 0
    assert f.period_score(capacity=100, consumed=0, requests=5, rate_limited=0, failed=5) == 0.0
    # all good
    assert f.period_score(capacity=100, consumed=10, requests=5, rate_limited=0, failed=0) == 1.0
    # counters that overlap are clamped
    assert f.period_score(capacity=100, consumed=0, requests=2, rate_limited=5, failed=5) == 0.0


def test_quality() -> None:
    assert f.quality([]) is None
    # mean(1^1.5, 0.25^1.5) = (1 + 0.125) / 2
    assert f.quality([1.0, 0.25]) == pytest.approx(0.5625)
    assert f.quality([2.0, -1.0]) == pytest.approx(0.5)


def test_percentile_matches_numpy_linear() -> None:
    assert f.percentile([10, 20, 30, 40, 50], 30) == pytest.approx(22.0)
    assert f.percentile([5], 30) == 5
    with pytest.raises(ValueError):
        f.percentile([], 30)


def test_speed_bonuses() -> None:
    bonuses = f.speed_bonuses({"fast": [100.0], "mid": [50.0], "slow": [10.0], "none": []})
    assert bonuses == {"fast": 0.25, "mid": 0.0, "slow": -0.25, "none": 0.0}
    assert f.speed_bonuses({"only": [5.0]}) == {"only": 0.0}
    assert f.speed_bonuses({}) == {}
    tie = f.speed_bonuses({"a": [10.0], "b": [10.0], "c": [1.0]})
    assert tie["a"] == tie["b"] == pytest.approx(0.125)
    assert tie["c"] == pytest.approx(-0.25)


def test_period_history_fewer_than_nine_periods_is_quartered() -> None:
    # newest first: scores 1.0 (weight 100), 0.0 (weight max(0, 50)·0.5 = 25)
    value = f.period_history([(1.0, 100, 10), (0.0, 0, 50)])
    assert value == pytest.approx(0.25 * (100 / 125))


def test_period_history_total_failure_still_weighs() -> None:
    # a failed period (consumed 0) weighs by its quota, unlike upstream
    assert f.period_history([(0.0, 0, 40)] + [(1.0, 40, 40)] * 8) < 0.9


def test_period_history_mature_miner() -> None:
    periods = [(1.0, 10.0, 10.0)] * 9
    assert f.period_history(periods) == pytest.approx(1.0)
    assert f.period_history([]) == 0.0
    assert f.period_history([(None, 10, 10)]) == 0.0


def test_effective_and_cubed_shares() -> None:
    effective = f.effective_scores(
        quality_by_miner={"a": 1.0, "b": 0.5},
        bonus_by_miner={"a": 0.25, "b": -0.25},
        history_by_miner={"a": 1.0, "b": 1.0},
        capacity_by_miner={"a": 100.0, "b": 100.0, "c": 0.0},
    )
    assert effective == {"a": 125.0, "b": 37.5, "c": 0.0}
    shares = f.cubed_shares(effective)
    s_a, s_b = 125 / 162.5, 37.5 / 162.5
    assert shares["a"] == pytest.approx(s_a**3 / (s_a**3 + s_b**3))
    assert shares["c"] == 0.0
    assert sum(shares.values()) == pytest.approx(1.0)
    assert f.cubed_shares({"x": 0.0}) == {"x": 0.0}


def test_combine_tasks_and_u16() -> None:
    combined = f.combine_tasks(
        {"chat": {"a": 1.0, "b": 0.0}, "image": {"a": 0.0, "b": 1.0}},
        {"chat": 0.4, "image": 0.6},
    )
    assert combined == pytest.approx({"a": 0.4, "b": 0.6})
    assert f.to_u16({1: 0.4, 2: 0.6}) == {1: round(0.4 / 0.6 * 65535), 2: 65535}
    assert f.to_u16({1: 0.0}) == {1: 0}
    assert f.combine_tasks({"chat": {"a": 0.0}}, {"chat": 1.0}) == {"a": 0.0}
