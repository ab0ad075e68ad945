"""The views of a miner's weight explanation (``scoring.read.explain_data``): every factor of the
latest weight run as stored, per task, with what the dashboard needs to show the arithmetic."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from scoring.weights.formula import FactorRow


class HistoryWeight(msgspec.Struct, frozen=True):
    """A period history entry of a weight run with its weight max(consumed, quota) × 0.5^age."""

    period_id: int
    score: float
    consumed: float
    quota: float
    weight: float


class TaskExplanation(msgspec.Struct, frozen=True):
    """One task of a miner's weight: every factor of SPEC §6 as the run stored it."""

    factor: FactorRow
    history: tuple[HistoryWeight, ...]  # scored entries, newest first
    unscored: int  # periods without a score (no requests or capacity)
    new_miner: bool  # × 0.25: not more than 8 scored periods
    total_effective: float  # ΣE over the task's miners
    total_cubes: float  # Σs³
    largest_capacity: float = 0.0  # the largest capacity among the task's miners
    speeds: tuple[float, ...] = ()  # every speed metric of the task's miners (the rank)

    @property
    def speed_factor(self) -> float:
        return 1 + self.factor.speed_bonus


class Explanation(msgspec.Struct, frozen=True):
    """A miner's weight in one stored run: per task factors → contributions → final weight."""

    run_id: int
    created_at: datetime
    status: str
    message: str
    block: int | None
    period_id: int | None
    version_key: int | None
    task_weights: dict[str, float]
    parameters: dict[str, Any]
    uid: int | None
    tasks: tuple[TaskExplanation, ...]
    contributions: float  # Σ_task W × s' of this miner
    all_contributions: float  # the same summed over every weighted miner
    weight: float | None  # normalised (None: not weighted: no uid)
    weight_u16: int | None
    max_weight: float  # the largest weight of the run (it gets 65535)


__all__ = ["Explanation", "HistoryWeight", "TaskExplanation"]
