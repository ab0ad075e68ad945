"""The weight calculation of SPEC §6, from its inputs to the u16 vector (pure, no I/O).

Per task ``t`` with normalised weight ``W_t``, for every miner that is a contender of the open
period or has checked results of ``t``:

1. quality ``q`` = mean(qᵢ^1.5) over ``t``'s recent checks only (no check: 0);
2. speed metric = 30th percentile of work/second over those checks, ranked into a bonus in
   [−0.25, +0.25] among the task's miners;
3. period history ``P`` = weighted mean of closed period scores, weights
   max(consumed, quota) × 0.5^age, × 0.25 until more than 8 scored periods;
4. ``E = q × (1 + bonus) × P × capacity`` (capacity of the open period's contender, else 0);
5. ``s = E/ΣE``, ``s' = s³/Σs³``;

then ``weight = Σ_t W_t s'`` normalised, and ``u16`` scaled so the largest is 65535. Every number
is kept (``FactorRow``, ``WeightCalculation``) so the stored run explains any miner's weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from scoring import formulas


class CheckSample(msgspec.Struct, frozen=True, array_like=True):
    quality: float
    work: float
    response_time_s: float

    @property
    def rate(self) -> float | None:
        if self.response_time_s <= 0 or self.work <= 0:
            return None
        return self.work / self.response_time_s


class HistoryEntry(msgspec.Struct, frozen=True, array_like=True):
    period_id: int
    score: float | None
    consumed: float
    quota: float


class TaskInputs(msgspec.Struct, frozen=True):
    task: str
    weight: float  # normalised over the enabled tasks
    capacity: Mapping[str, float]  # open-period contenders: clamped capacity
    checks: Mapping[str, Sequence[CheckSample]]
    history: Mapping[str, Sequence[HistoryEntry]]  # newest first


class FactorRow(msgspec.Struct, frozen=True):
    task: str
    hotkey: str
    check_count: int
    quality: float | None
    speed_metric: float | None
    speed_bonus: float
    history: list[HistoryEntry]
    periods_scored: int
    period_history: float
    capacity: float
    effective: float
    share: float
    cubed_share: float
    task_weight: float

    @property
    def contribution(self) -> float:
        """This task's part of the miner's (unnormalised) weight: W_t × s'."""
        return self.task_weight * self.cubed_share


class WeightCalculation(msgspec.Struct, frozen=True):
    factors: list[FactorRow]
    weights: dict[str, float]  # hotkey -> normalised weight (registered miners)
    uids: dict[str, int]  # hotkey -> uid
    u16: dict[int, int]  # uid -> value sent

    @property
    def all_zero(self) -> bool:
        return not any(self.u16.values())


def _task_factors(inputs: TaskInputs) -> list[FactorRow]:
    miners = sorted(set(inputs.capacity) | {h for h, s in inputs.checks.items() if s})
    rates = {
        miner: [rate for s in inputs.checks.get(miner, ()) if (rate := s.rate) is not None]
        for miner in miners
    }
    bonuses = formulas.speed_bonuses(rates)
    quality = {m: formulas.quality([s.quality for s in inputs.checks.get(m, ())]) for m in miners}
    history = {
        miner: formulas.period_history(
            [(e.score, e.consumed, e.quota) for e in inputs.history.get(miner, ())]
        )
        for miner in miners
    }
    capacity = {miner: max(inputs.capacity.get(miner, 0.0), 0.0) for miner in miners}
    effective = formulas.effective_scores(
        quality_by_miner={m: q for m, q in quality.items() if q is not None},
        bonus_by_miner=bonuses,
        history_by_miner=history,
        capacity_by_miner=capacity,
    )
    total = sum(effective.values())
    cubed = formulas.cubed_shares(effective)
    rows = []
    for miner in miners:
        entries = list(inputs.history.get(miner, ()))
        rows.append(
            FactorRow(
                task=inputs.task,
                hotkey=miner,
                check_count=len(inputs.checks.get(miner, ())),
                quality=quality[miner],
                speed_metric=(
                    formulas.percentile(rates[miner], formulas.SPEED_PERCENTILE)
                    if rates[miner]
                    else None
                ),
                speed_bonus=bonuses.get(miner, 0.0),
                history=entries,
                periods_scored=sum(1 for e in entries if e.score is not None),
                period_history=history[miner],
                capacity=capacity[miner],
                effective=effective[miner],
                share=effective[miner] / total if total > 0 else 0.0,
                cubed_share=cubed[miner],
                task_weight=inputs.weight,
            )
        )
    return rows


def calculate(tasks: Sequence[TaskInputs], uids: Mapping[str, int]) -> WeightCalculation:
    """Weights over every task; miners without a uid (deregistered) cannot be weighted and are
    left out of the vector (their factors are still reported)."""
    factors = [row for inputs in tasks for row in _task_factors(inputs)]
    shares: dict[str, dict[str, float]] = {}
    for row in factors:
        if row.hotkey in uids:
            shares.setdefault(row.task, {})[row.hotkey] = row.cubed_share
    combined = formulas.combine_tasks(shares, {inputs.task: inputs.weight for inputs in tasks})
    kept_uids = {hotkey: uids[hotkey] for hotkey in combined}
    u16 = formulas.to_u16({kept_uids[hotkey]: value for hotkey, value in combined.items()})
    return WeightCalculation(factors=factors, weights=combined, uids=kept_uids, u16=u16)
