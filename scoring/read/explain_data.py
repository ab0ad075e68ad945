"""Reading a miner's weight explanation: the latest run's factors of the miner (with each
task's ΣE, Σs³, largest capacity and speed metrics) and the closed periods its history names
(``scoring.read.advice`` turns them into words)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.tables.scoring import Contender, WeightRun, WeightRunFactor, WeightRunWeight
from scoring import formulas
from scoring.read.advice import PeriodFacts
from scoring.read.explain_views import Explanation, HistoryWeight, TaskExplanation
from scoring.weights.formula import FactorRow, HistoryEntry


def _history_weights(history: Sequence[HistoryEntry]) -> tuple[HistoryWeight, ...]:
    """The scored entries with their weight max(consumed, quota) × 0.5^age, as
    ``formulas.period_history`` weighs them."""
    scored = [entry for entry in history if entry.score is not None]
    return tuple(
        HistoryWeight(
            e.period_id,
            e.score or 0.0,
            e.consumed,
            e.quota,
            max(e.consumed, e.quota, 0.0) * formulas.HISTORY_DECAY**age,
        )
        for age, e in enumerate(scored)
    )


async def explanation(session: AsyncSession, hotkey: str) -> Explanation | None:
    """The miner's weight in the latest run, every factor as stored (``scoring.weights.runs``)."""
    run = await session.scalar(select(WeightRun).order_by(WeightRun.id.desc()).limit(1))
    if run is None:
        return None
    f = WeightRunFactor
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    speeds: dict[str, list[float]] = defaultdict(list)
    all_contributions = 0.0
    everyone = select(
        f.task,
        f.effective,
        f.share,
        f.cubed_share,
        f.task_weight,
        f.uid,
        f.capacity,
        f.speed_metric,
    )
    for task, effective, share, cubed, weight, uid, capacity, speed in await session.execute(
        everyone.where(f.run_id == run.id)
    ):
        totals[task][0] += effective
        totals[task][1] += share**3
        totals[task][2] = max(totals[task][2], capacity)
        if speed is not None:
            speeds[task].append(speed)
        if uid is not None:
            all_contributions += weight * cubed
    mine = (
        await session.scalars(
            select(f).where(f.run_id == run.id, f.hotkey == hotkey).order_by(f.task)
        )
    ).all()
    w = WeightRunWeight
    max_weight = await session.scalar(select(func.max(w.weight)).where(w.run_id == run.id))
    own = (
        await session.execute(
            select(w.uid, w.weight, w.weight_u16).where(w.run_id == run.id, w.hotkey == hotkey)
        )
    ).first()
    tasks = []
    for row in mine:
        history = msgspec.convert(row.history, list[HistoryEntry])
        stored = {name: getattr(row, name) for name in FactorRow.__struct_fields__}
        factor = FactorRow(**{**stored, "history": history})
        weighted = _history_weights(history)
        tasks.append(
            TaskExplanation(
                factor=factor,
                history=weighted,
                unscored=len(history) - len(weighted),
                new_miner=row.periods_scored <= formulas.NEW_MINER_PERIODS,
                total_effective=totals[row.task][0],
                total_cubes=totals[row.task][1],
                largest_capacity=totals[row.task][2],
                speeds=tuple(speeds[row.task]),
            )
        )
    uid = own[0] if own else next((row.uid for row in mine if row.uid is not None), None)
    return Explanation(
        run_id=run.id,
        created_at=run.created_at,
        status=run.status,
        message=run.message,
        block=run.block,
        period_id=run.period_id,
        version_key=run.version_key,
        task_weights={k: float(v) for k, v in run.task_weights.items()},
        parameters=dict(run.parameters),
        uid=uid,
        tasks=tuple(tasks),
        contributions=sum(t.factor.contribution for t in tasks),
        all_contributions=all_contributions,
        weight=own[1] if own else None,
        weight_u16=own[2] if own else None,
        max_weight=float(max_weight or 0.0),
    )


async def period_facts(
    session: AsyncSession, hotkey: str, periods: dict[str, list[int]]
) -> dict[str, dict[int, PeriodFacts]]:
    """The miner's closed contenders of the given periods, per task: why each period scored
    as it did (``scoring.read.advice``)."""
    c = Contender
    wanted = {pid for ids in periods.values() for pid in ids}
    if not wanted:
        return {}
    stmt = select(
        c.task, c.period_id, c.requests, c.rate_limited, c.failed, c.consumed, c.capacity
    ).where(
        c.hotkey == hotkey,
        c.task.in_(list(periods)),
        c.period_id.in_(sorted(wanted)),
        c.closed.is_(True),
    )
    found: dict[str, dict[int, PeriodFacts]] = defaultdict(dict)
    for task, pid, requests, limited, failed, consumed, capacity in await session.execute(stmt):
        found[task][pid] = PeriodFacts(pid, requests, limited, failed, consumed, capacity)
    return dict(found)
