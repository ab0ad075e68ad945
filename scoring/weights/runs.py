"""Storing weight calculations and reading them back (``sn19 scores show``, the dashboard).

A run is stored before anything is sent (status ``computed``) and updated with what the chain
said: ``set``, ``refused`` (the chain or the SDK's preflight said no), ``unavailable`` (the
chain could not be reached), ``skipped`` (nothing to set: every weight is zero).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select, update

from core.db import Database, utcnow
from core.db.tables.scoring import WeightRun, WeightRunFactor, WeightRunWeight
from scoring import formulas
from scoring.weights.formula import FactorRow, HistoryEntry, WeightCalculation


def parameters(*, quality_window_s: float, history_periods: int) -> dict[str, Any]:
    """The constants and windows of SPEC §6 a calculation used."""
    return {
        "quality_window_s": quality_window_s,
        "history_periods": history_periods,
        "quality_exponent": formulas.QUALITY_EXPONENT,
        "speed_percentile": formulas.SPEED_PERCENTILE,
        "speed_bonus_span": formulas.SPEED_BONUS_SPAN,
        "history_decay": formulas.HISTORY_DECAY,
        "new_miner_factor": formulas.NEW_MINER_FACTOR,
        "new_miner_periods": formulas.NEW_MINER_PERIODS,
        "share_exponent": 3,
    }


async def store_run(
    db: Database,
    calc: WeightCalculation,
    *,
    task_weights: dict[str, float],
    params: dict[str, Any],
    period_id: int | None,
    block: int | None,
) -> int:
    async with db.transaction() as session:
        run = WeightRun(
            created_at=utcnow(),
            period_id=period_id,
            block=block,
            status="computed",
            message="",
            task_weights=task_weights,
            parameters=params,
        )
        session.add(run)
        await session.flush()
        session.add_all(
            WeightRunFactor(
                run_id=run.id,
                task=row.task,
                hotkey=row.hotkey,
                uid=calc.uids.get(row.hotkey),
                check_count=row.check_count,
                quality=row.quality,
                speed_metric=row.speed_metric,
                speed_bonus=row.speed_bonus,
                history=msgspec.to_builtins(row.history),
                periods_scored=row.periods_scored,
                period_history=row.period_history,
                capacity=row.capacity,
                effective=row.effective,
                share=row.share,
                cubed_share=row.cubed_share,
                task_weight=row.task_weight,
            )
            for row in calc.factors
        )
        session.add_all(
            WeightRunWeight(
                run_id=run.id,
                hotkey=hotkey,
                uid=calc.uids[hotkey],
                weight=weight,
                weight_u16=calc.u16.get(calc.uids[hotkey], 0),
            )
            for hotkey, weight in calc.weights.items()
        )
        return run.id


async def finish_run(
    db: Database,
    run_id: int,
    *,
    status: str,
    message: str,
    version_key: int | None = None,
    block: int | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "message": message[:2000]}
    if version_key is not None:
        values["version_key"] = version_key
    if block is not None and block >= 0:
        values["block"] = block
    if status == "set":
        values["set_at"] = utcnow()
    async with db.transaction() as session:
        await session.execute(update(WeightRun).where(WeightRun.id == run_id).values(**values))


class MinerWeight(msgspec.Struct, frozen=True):
    hotkey: str
    uid: int | None
    weight: float
    weight_u16: int


class RunReport(msgspec.Struct, frozen=True):
    id: int
    created_at: datetime
    status: str
    message: str
    block: int | None
    period_id: int | None
    version_key: int | None
    set_at: datetime | None
    task_weights: dict[str, float]
    parameters: dict[str, Any]
    factors: list[tuple[int | None, FactorRow]]  # (uid, factors)
    weights: list[MinerWeight]


async def load_run(db: Database, run_id: int | None = None) -> RunReport | None:
    """A stored run (the latest when ``run_id`` is None)."""
    async with db.read() as session:
        query = select(WeightRun)
        query = (
            query.where(WeightRun.id == run_id)
            if run_id is not None
            else query.order_by(WeightRun.id.desc()).limit(1)
        )
        run = await session.scalar(query)
        if run is None:
            return None
        factor_rows = (
            await session.scalars(
                select(WeightRunFactor)
                .where(WeightRunFactor.run_id == run.id)
                .order_by(WeightRunFactor.task, WeightRunFactor.hotkey)
            )
        ).all()
        weight_rows = (
            await session.scalars(
                select(WeightRunWeight)
                .where(WeightRunWeight.run_id == run.id)
                .order_by(WeightRunWeight.weight.desc(), WeightRunWeight.hotkey)
            )
        ).all()
    factors = [
        (
            row.uid,
            FactorRow(
                task=row.task,
                hotkey=row.hotkey,
                check_count=row.check_count,
                quality=row.quality,
                speed_metric=row.speed_metric,
                speed_bonus=row.speed_bonus,
                history=msgspec.convert(row.history, list[HistoryEntry]),
                periods_scored=row.periods_scored,
                period_history=row.period_history,
                capacity=row.capacity,
                effective=row.effective,
                share=row.share,
                cubed_share=row.cubed_share,
                task_weight=row.task_weight,
            ),
        )
        for row in factor_rows
    ]
    return RunReport(
        id=run.id,
        created_at=run.created_at,
        status=run.status,
        message=run.message,
        block=run.block,
        period_id=run.period_id,
        version_key=run.version_key,
        set_at=run.set_at,
        task_weights=dict(run.task_weights),
        parameters=dict(run.parameters),
        factors=factors,
        weights=[MinerWeight(r.hotkey, r.uid, r.weight, r.weight_u16) for r in weight_rows],
    )
