"""The numbers of SPEC §6, as pure functions (no I/O): capacities and quotas, period scores,
quality, speed bonus, period history, per-task normalisation with the cube, and weights in u16.

Every function documents its edge cases; `tests/unit/scoring/test_formulas.py` checks each against
hand-computed values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

# Test-quota multipliers and their probabilities (upstream's chained coin flips).
QUOTA_MULTIPLIERS: tuple[tuple[float, float], ...] = (
    (0.04, 0.5),
    (0.08, 0.4),
    (0.12, 0.095),
    (0.8, 0.005),
)
SPEED_BONUS_SPAN = 0.25
HISTORY_DECAY = 0.5
NEW_MINER_FACTOR = 0.25
NEW_MINER_PERIODS = 8
QUALITY_EXPONENT = 1.5
SPEED_PERCENTILE = 30.0
U16_MAX = 65535


def clamp_capacity(announced: float, max_capacity: float) -> float:
    """Announced capacity clamped to [0, max_capacity]; NaN counts as 0."""
    if math.isnan(announced):
        return 0.0
    return min(max(announced, 0.0), max_capacity)


def draw_quota_multiplier(rng: random.Random) -> float:
    """m with P(0.04)=.5, P(0.08)=.4, P(0.12)=.095, P(0.8)=.005."""
    point = rng.random()
    cumulative = 0.0
    for multiplier, probability in QUOTA_MULTIPLIERS:
        cumulative += probability
        if point < cumulative:
            return multiplier
    return QUOTA_MULTIPLIERS[-1][0]


def quota_volume(capacity: float, multiplier: float) -> float:
    """Volume of this contender's capacity the validator tests in a period."""
    return capacity * multiplier


def period_score(
    *, capacity: float, consumed: float, requests: int, rate_limited: int, failed: int
) -> float | None:
    """good × (1 − p429·unq) × (1 − pfail·unq); None when nothing can be said (no requests or
    no capacity). unq is the share of announced capacity left unused, so a miner that rate-limits
    or fails only after its announced volume was used is not penalised for it."""
    if requests <= 0 or capacity <= 0:
        return None
    rate_limited = min(max(rate_limited, 0), requests)
    failed = min(max(failed, 0), requests - rate_limited)
    good = (requests - rate_limited - failed) / requests
    p429 = rate_limited / requests
    pfail = failed / requests
    unused = max(capacity - max(consumed, 0.0), 0.0) / capacity
    return max(good * (1 - p429 * unused) * (1 - pfail * unused), 0.0)


def quality(scores: Sequence[float]) -> float | None:
    """mean(q^1.5) over the task's recent checks; None without checks. Scores clamp to [0, 1]."""
    if not scores:
        return None
    total: float = sum(min(max(q, 0.0), 1.0) ** QUALITY_EXPONENT for q in scores)
    return total / len(scores)


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def speed_bonuses(work_rates: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Per miner, the 30th-percentile work/second of its checked results, ranked into a bonus
    from +0.25 (fastest) to −0.25 (slowest), linear in rank. One miner (or none with data) gets
    0; ties share the mean bonus of the ranks they occupy; miners without data get 0."""
    metrics = {
        miner: percentile(rates, SPEED_PERCENTILE) for miner, rates in work_rates.items() if rates
    }
    bonuses = {miner: 0.0 for miner in work_rates}
    count = len(metrics)
    if count < 2:
        return bonuses
    ordered = sorted(metrics.items(), key=lambda item: -item[1])
    position = 0
    while position < count:
        end = position
        while end + 1 < count and ordered[end + 1][1] == ordered[position][1]:
            end += 1
        mean_rank = (position + end) / 2
        bonus = 2 * SPEED_BONUS_SPAN * (0.5 - mean_rank / (count - 1))
        for index in range(position, end + 1):
            bonuses[ordered[index][0]] = bonus
        position = end + 1
    return bonuses


def period_history(periods: Sequence[tuple[float | None, float, float]]) -> float:
    """Weighted mean of past period scores, newest first: entries (score, consumed, quota).

    Weight of a period = max(consumed, quota) × 0.5^age, so a period of total failure still
    weighs (upstream weighted by consumed volume alone). Periods without a score are skipped.
    The result is × 0.25 until the miner has more than 8 scored periods. No scored period → 0.
    """
    scored = [(score, consumed, quota) for score, consumed, quota in periods if score is not None]
    numerator = 0.0
    denominator = 0.0
    for age, (score, consumed, quota) in enumerate(scored):
        weight = max(consumed, quota, 0.0) * HISTORY_DECAY**age
        numerator += score * weight
        denominator += weight
    if denominator <= 0:
        return 0.0
    value = numerator / denominator
    if len(scored) <= NEW_MINER_PERIODS:
        value *= NEW_MINER_FACTOR
    return value


def effective_scores(
    *,
    quality_by_miner: Mapping[str, float],
    bonus_by_miner: Mapping[str, float],
    history_by_miner: Mapping[str, float],
    capacity_by_miner: Mapping[str, float],
) -> dict[str, float]:
    """E = quality × (1 + speed bonus) × period history × capacity, per miner of one task."""
    return {
        miner: max(
            quality_by_miner.get(miner, 0.0)
            * (1 + bonus_by_miner.get(miner, 0.0))
            * history_by_miner.get(miner, 0.0)
            * capacity,
            0.0,
        )
        for miner, capacity in capacity_by_miner.items()
    }


def cubed_shares(effective: Mapping[str, float]) -> dict[str, float]:
    """s = E/ΣE, then s' = s³/Σs³. All zero when ΣE = 0."""
    total = sum(effective.values())
    if total <= 0:
        return {miner: 0.0 for miner in effective}
    cubes = {miner: (value / total) ** 3 for miner, value in effective.items()}
    cube_total = sum(cubes.values())
    return {miner: cube / cube_total for miner, cube in cubes.items()}


def combine_tasks(
    shares_by_task: Mapping[str, Mapping[str, float]], task_weights: Mapping[str, float]
) -> dict[str, float]:
    """Σ_task weight × s', normalised to sum to 1 (all zero when nothing scored)."""
    total_weight = sum(max(weight, 0.0) for weight in task_weights.values())
    combined: dict[str, float] = {}
    for task, shares in shares_by_task.items():
        weight = max(task_weights.get(task, 0.0), 0.0) / total_weight if total_weight else 0.0
        for miner, share in shares.items():
            combined[miner] = combined.get(miner, 0.0) + weight * share
    total = sum(combined.values())
    if total <= 0:
        return {miner: 0.0 for miner in combined}
    return {miner: value / total for miner, value in combined.items()}


def to_u16(weights: Mapping[int, float]) -> dict[int, int]:
    """Scale so the largest weight is 65535 (the chain normalises again); all-zero stays zero."""
    top = max(weights.values(), default=0.0)
    if top <= 0:
        return {uid: 0 for uid in weights}
    return {uid: round(max(value, 0.0) / top * U16_MAX) for uid, value in weights.items()}
