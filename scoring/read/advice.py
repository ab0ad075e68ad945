"""A miner's weight explained in words it can act on (pure, no I/O).

For each task, every factor of ``E = quality × (1 + speed bonus) × period history × capacity``
(SPEC §6) is measured by how much larger ``E`` would be if that factor were at its best:

- **quality**: ``q`` against 1 (a perfect check record): gain ``1 / q``;
- **speed rank**: ``1 + bonus`` against the fastest miner's ``1.25``;
- **failures** and **429s**: the period history with the requests that failed (or were
  rate-limited) counted as served, against the history as it is. Each scored period's loss
  ``1 − score`` is shared between its failures and 429s in proportion to their counts, and
  weighed as the history weighs the period (``max(consumed, quota) × 0.5^age``);
- **new miner**: the ``× 0.25`` a miner carries until more than 8 periods are scored (nothing to
  do but keep serving);
- **capacity**: the capacity announced for this period against the largest announced on the
  task (``E`` grows with capacity, so capacity others offer and this miner does not is weight
  it leaves unused).

The factor with the largest gain limited the miner most (``TaskAdvice.dominant``); every
factor comes with its numbers, the period or window they come from, and what would raise the
weight. Shares are cubed (``s′ = s³ / Σs³``), so a gain in ``E`` raises the weight more than
proportionally. ``sn19 scores show --miner`` prints the words; the dashboard's miner page and
the public scoreboard show them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

from scoring import formulas
from scoring.weights.formula import FactorRow

BEST_SPEED = 1 + formulas.SPEED_BONUS_SPAN
# Gains below this are not worth a sentence about what limits the miner.
NEGLIGIBLE = 1.02


class PeriodFacts(msgspec.Struct, frozen=True):
    """A closed period's counters of one (miner, task): why its score is what it is."""

    period_id: int
    requests: int
    rate_limited: int
    failed: int
    consumed: float = 0.0
    capacity: float | None = None


class Limit(msgspec.Struct, frozen=True):
    factor: str  # quality | speed | failures | 429s | new miner | capacity
    gain: float  # E × gain if this factor were at its best (inf: E is 0 because of it)
    words: str  # what limits, with the numbers and the period or window
    action: str  # what would raise the weight

    @property
    def label(self) -> str:
        return _label(self.factor)

    @property
    def gain_text(self) -> str:
        """``×2.23`` (or ``from zero``): what E would be multiplied by."""
        return _times(self.gain)


class TaskAdvice(msgspec.Struct, frozen=True):
    task: str
    limits: tuple[Limit, ...]  # largest gain first; negligible ones left out

    @property
    def dominant(self) -> Limit | None:
        return self.limits[0] if self.limits else None

    @property
    def summary(self) -> str:
        top = self.dominant
        if top is None:
            return f"{self.task}: nothing limits this miner noticeably; keep it up."
        return f"{self.task}: {_label(top.factor)} limited this miner most. {top.words}"


def _label(factor: str) -> str:
    return {"429s": "Rate limiting (429s)", "new miner": "Being new"}.get(
        factor, factor.capitalize()
    )


def _gain(best: float, actual: float) -> float:
    if actual <= 0:
        return math.inf if best > 0 else 1.0
    return max(best / actual, 1.0)


def _times(gain: float) -> str:
    return "from zero" if math.isinf(gain) else f"×{gain:.2f}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _quality(row: FactorRow, window_h: float) -> Limit:
    q = row.quality or 0.0
    if row.check_count == 0:
        words = f"No check of this task in the last {window_h:.1f} h, so quality counts as 0."
    else:
        words = (
            f"Checks of your answers scored mean(q^1.5) = {q:.2f} over {row.check_count} "
            f"check{'s' if row.check_count != 1 else ''} in the last {window_h:.1f} h "
            "(1.00 is a perfect record)."
        )
    return Limit(
        "quality",
        _gain(1.0, q),
        words,
        "Serve the task's exact reference model and return its real logprobs; the failed "
        "checks list says which rule each bad answer broke.",
    )


def _speed(row: FactorRow, speeds: Sequence[float]) -> Limit:
    ranked = sorted(speeds, reverse=True)
    if row.speed_metric is None or len(ranked) < 2:
        return Limit(
            "speed",
            1.0,
            "Speed is not ranked: fewer than two miners have checked results on this task.",
            "Nothing to do yet.",
        )
    rank = 1 + sum(1 for metric in ranked if metric > row.speed_metric)
    words = (
        f"Your 30th-percentile speed, {row.speed_metric:,.1f} work/s over the checked "
        f"results, ranks {_ordinal(rank)} of {len(ranked)}: bonus {row.speed_bonus:+.2f} "
        f"(the fastest gets +{formulas.SPEED_BONUS_SPAN:.2f})."
    )
    return Limit(
        "speed",
        _gain(BEST_SPEED, 1 + row.speed_bonus),
        words,
        "Answer faster at the low end: the slowest 30% of your results set the rank "
        "(time to first token and tokens per second under load).",
    )


def _cause_losses(row: FactorRow, periods: Mapping[int, PeriodFacts]) -> tuple[float, float, float]:
    """(history weight, loss to failures, loss to 429s) over the scored periods."""
    total = failure_loss = limit_loss = 0.0
    scored = [entry for entry in row.history if entry.score is not None]
    for age, entry in enumerate(scored):
        weight = max(entry.consumed, entry.quota, 0.0) * formulas.HISTORY_DECAY**age
        total += weight
        facts = periods.get(entry.period_id)
        lost = 1.0 - (entry.score or 0.0)
        if facts is None or lost <= 0:
            continue
        bad = facts.failed + facts.rate_limited
        if bad <= 0:
            continue
        failure_loss += weight * lost * facts.failed / bad
        limit_loss += weight * lost * facts.rate_limited / bad
    return total, failure_loss, limit_loss


def _worst(row: FactorRow, periods: Mapping[int, PeriodFacts], field: str, verb: str) -> str:
    """The scored period with the largest share of ``field``, in words."""
    found = [
        periods[e.period_id] for e in row.history if e.score is not None and e.period_id in periods
    ]
    worst = max(found, key=lambda f: getattr(f, field) / max(f.requests, 1), default=None)
    count = sum(getattr(f, field) for f in found)
    requests = sum(f.requests for f in found)
    if worst is None or count == 0:
        return ""
    text = (
        f"{getattr(worst, field)} of {worst.requests} requests {verb} in period "
        f"#{worst.period_id} ({count} of {requests} over the last {len(found)} scored periods)"
    )
    if field == "rate_limited" and worst.capacity:
        unused = max(worst.capacity - worst.consumed, 0.0) / worst.capacity
        text += f", while {unused:.0%} of the capacity you announced went unused"
    return text


def _history(row: FactorRow, periods: Mapping[int, PeriodFacts]) -> list[Limit]:
    limits: list[Limit] = []
    new = row.periods_scored <= formulas.NEW_MINER_PERIODS
    raw = row.period_history / formulas.NEW_MINER_FACTOR if new else row.period_history
    total, failure_loss, limit_loss = _cause_losses(row, periods)
    for field, factor, loss, action in (
        (
            "failed",
            "failures",
            failure_loss,
            "Find why requests fail (errors, timeouts, streams cut short) in your miner's "
            "log: every failed request lowers the period it falls in.",
        ),
        (
            "rate_limited",
            "429s",
            limit_loss,
            "Announce only the capacity and concurrency you can serve: a 429 while announced "
            "capacity is unused is penalised, one after it is used up is not.",
        ),
    ):
        if total <= 0 or loss <= 0:
            continue
        without = raw + loss / total
        verb = "failed" if factor == "failures" else "were answered 429"
        which = _worst(row, periods, field, verb) or f"Requests {verb}"
        limits.append(
            Limit(
                factor,
                _gain(without, raw),
                f"{which}; they pulled the period history to "
                f"{raw:.2f} (about {without:.2f} without them).",
                action,
            )
        )
    if new and row.periods_scored > 0:
        more = formulas.NEW_MINER_PERIODS + 1 - row.periods_scored
        limits.append(
            Limit(
                "new miner",
                1 / formulas.NEW_MINER_FACTOR,
                f"Only {row.periods_scored} periods are scored: the period history counts "
                f"×{formulas.NEW_MINER_FACTOR} until more than {formulas.NEW_MINER_PERIODS} are "
                f"({more} more).",
                "Keep serving well: this lifts by itself.",
            )
        )
    if row.periods_scored == 0:
        limits.append(
            Limit(
                "new miner",
                math.inf,
                "No period of this task is scored yet, so the period history is 0.",
                "Answer the capacity request and serve the validator's requests for a period.",
            )
        )
    return limits


def _capacity(row: FactorRow, largest: float) -> Limit:
    largest = max(largest, row.capacity)
    if row.capacity <= 0:
        words = "No capacity announced for this period: the miner is not a contender."
    else:
        words = (
            f"You announced {row.capacity:,.0f} for this period; the largest on this task is "
            f"{largest:,.0f}. E grows with capacity, so capacity you do not offer is weight "
            "left unused."
        )
    return Limit(
        "capacity",
        _gain(largest, row.capacity),
        words,
        "Announce more capacity if your hardware can serve it without 429s or failures.",
    )


def advise_task(
    row: FactorRow,
    periods: Mapping[int, PeriodFacts],
    *,
    largest_capacity: float,
    speeds: Sequence[float],
    quality_window_s: float,
) -> TaskAdvice:
    """What limits ``row`` (one miner on one task in a weight run) most. ``periods``: the
    miner's closed periods of the task by id (those of ``row.history`` that are known);
    ``largest_capacity`` and ``speeds``: the largest capacity and every speed metric among the
    task's miners in the run (``peers_of``)."""
    limits = [
        _quality(row, quality_window_s / 3600),
        _speed(row, speeds),
        *_history(row, periods),
        _capacity(row, largest_capacity),
    ]
    kept = [limit for limit in limits if limit.gain >= NEGLIGIBLE]
    kept.sort(key=lambda limit: -limit.gain)
    return TaskAdvice(row.task, tuple(kept))


def peers_of(rows: Sequence[FactorRow]) -> tuple[float, tuple[float, ...]]:
    """(largest capacity, speed metrics) of one task's rows in a run."""
    return (
        max((r.capacity for r in rows), default=0.0),
        tuple(r.speed_metric for r in rows if r.speed_metric is not None),
    )


def advice_text(advice: Sequence[TaskAdvice]) -> list[str]:
    """The words as lines of text (``sn19 scores show --miner``)."""
    lines: list[str] = []
    for task in advice:
        lines.append(f"  {task.summary}")
        for limit in task.limits:
            lines.append(
                f"    - {_label(limit.factor)} ({_times(limit.gain)} E if fixed): {limit.words}"
            )
            lines.append(f"      → {limit.action}")
    return lines
