"""Database access of the validator loop: periods and contenders, check results, history.

Every write runs in one ``db.transaction()``; a period is closed and the next one opened in the
same transaction, guarded by ``status = 'open'`` and the partial unique index on open periods,
so two processes can never both open the next period.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from core.db import Database, rowcount, utcnow
from core.db.tables.scoring import CheckResult, Contender, Period, WeightRun
from scoring import formulas
from scoring.contenders import ContenderPlan, ContenderView, PeriodView
from scoring.counters import Counts
from scoring.weights.formula import CheckSample, HistoryEntry


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _view(period: Period, contenders: list[Contender]) -> PeriodView:
    return PeriodView(
        id=period.id,
        started_at=_ts(period.started_at),
        ends_at=_ts(period.ends_at),
        period_s=period.period_s,
        seed=period.seed,
        contenders=tuple(
            ContenderView(
                id=row.id,
                task=row.task,
                hotkey=row.hotkey,
                uid=row.uid,
                url=row.url,
                capacity=row.capacity,
                concurrency=row.concurrency,
                quota_multiplier=row.quota_multiplier,
                quota=row.quota,
            )
            for row in sorted(contenders, key=lambda row: row.id)
        ),
    )


async def open_period(db: Database) -> PeriodView | None:
    """The open period with its contenders (None when there is none)."""
    async with db.read() as session:
        period = await session.scalar(select(Period).where(Period.status == "open"))
        if period is None:
            return None
        rows = list(
            (await session.scalars(select(Contender).where(Contender.period_id == period.id))).all()
        )
    return _view(period, rows)


def _close_values(row: Contender, counts: Counts) -> dict[str, object]:
    return {
        "consumed": counts.consumed,
        "requests": counts.requests,
        "rate_limited": counts.rate_limited,
        "failed": counts.failed,
        "organic_volume": counts.organic_volume,
        "organic_requests": counts.organic_requests,
        "synthetic_requests": counts.synthetic_requests,
        "period_score": formulas.period_score(
            capacity=row.capacity,
            consumed=counts.consumed,
            requests=counts.requests,
            rate_limited=counts.rate_limited,
            failed=counts.failed,
        ),
        "closed": True,
    }


async def rotate(
    db: Database,
    *,
    closing: PeriodView | None,
    counts: dict[tuple[str, str], Counts],
    plans: list[ContenderPlan],
    now: float,
    period_s: float,
    seed: int,
    opened_by: str,
    block: int | None,
) -> PeriodView | None:
    """Close ``closing`` (scoring its contenders from ``counts``) and open the next period with
    ``plans``, in one transaction. None when another process closed it first."""
    started = datetime.fromtimestamp(now, UTC)
    async with db.transaction() as session:
        if closing is not None:
            result = await session.execute(
                update(Period)
                .where(Period.id == closing.id, Period.status == "open")
                .values(status="closed", closed_at=started)
            )
            if rowcount(result) != 1:
                return None
            rows = (
                await session.scalars(select(Contender).where(Contender.period_id == closing.id))
            ).all()
            for row in rows:
                values = _close_values(row, counts.get((row.task, row.hotkey), Counts()))
                await session.execute(
                    update(Contender).where(Contender.id == row.id).values(**values)
                )
        period = Period(
            status="open",
            started_at=started,
            ends_at=started + timedelta(seconds=period_s),
            period_s=period_s,
            block=block,
            opened_by=opened_by[:128],
            seed=seed,
        )
        session.add(period)
        await session.flush()
        contenders = [
            Contender(
                period_id=period.id,
                task=plan.task,
                hotkey=plan.hotkey,
                uid=plan.uid,
                url=plan.url[:256],
                announced=plan.announced,
                capacity=plan.capacity,
                concurrency=plan.concurrency,
                quota_multiplier=plan.quota_multiplier,
                quota=plan.quota,
                consumed=0.0,
                requests=0,
                rate_limited=0,
                failed=0,
                organic_volume=0.0,
                organic_requests=0,
                synthetic_requests=0,
                period_score=None,
                closed=False,
            )
            for plan in plans
        ]
        session.add_all(contenders)
        await session.flush()
        return _view(period, contenders)


async def recent_checks(db: Database, task: str, since: datetime) -> dict[str, list[CheckSample]]:
    """This task's check results since ``since``, per miner hotkey (other tasks never mix in)."""
    async with db.read() as session:
        rows = await session.execute(
            select(
                CheckResult.miner_hotkey,
                CheckResult.quality,
                CheckResult.work,
                CheckResult.response_time_s,
            ).where(CheckResult.task == task, CheckResult.created_at >= since)
        )
        samples: dict[str, list[CheckSample]] = defaultdict(list)
        for hotkey, quality, work, response_time in rows:
            samples[hotkey].append(CheckSample(quality, work, response_time))
    return dict(samples)


async def mean_quality(db: Database, since: datetime) -> dict[tuple[str, str], float]:
    """Plain mean check quality per (task, miner) since ``since``: what routing prefers."""
    async with db.read() as session:
        rows = await session.execute(
            select(CheckResult.task, CheckResult.miner_hotkey, func.avg(CheckResult.quality))
            .where(CheckResult.created_at >= since)
            .group_by(CheckResult.task, CheckResult.miner_hotkey)
        )
        return {(task, hotkey): float(value) for task, hotkey, value in rows}


async def period_history(
    db: Database, task: str, hotkeys: list[str], *, limit: int
) -> dict[str, list[HistoryEntry]]:
    """Closed periods of each (task, miner), newest first, at most ``limit`` each."""
    history: dict[str, list[HistoryEntry]] = {hotkey: [] for hotkey in hotkeys}
    if not hotkeys:
        return history
    async with db.read() as session:
        rows = await session.execute(
            select(
                Contender.hotkey,
                Contender.period_id,
                Contender.period_score,
                Contender.consumed,
                Contender.quota,
            )
            .where(
                Contender.task == task,
                Contender.hotkey.in_(hotkeys),
                Contender.closed.is_(True),
            )
            .order_by(Contender.period_id.desc())
        )
        for hotkey, period_id, score, consumed, quota in rows:
            entries = history[hotkey]
            if len(entries) < limit:
                entries.append(HistoryEntry(period_id, score, consumed, quota))
    return history


async def prune(db: Database, *, older_than_s: float) -> int:
    """Delete closed periods (their contenders cascade), weight runs and check results older
    than the retention; returns the rows removed from the three parent tables."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    removed = 0
    async with db.transaction() as session:
        stale = select(Period.id).where(Period.status == "closed", Period.ends_at < cutoff)
        stale_ids = list((await session.scalars(stale)).all())
        if stale_ids:
            await session.execute(delete(Contender).where(Contender.period_id.in_(stale_ids)))
            removed += rowcount(
                await session.execute(delete(Period).where(Period.id.in_(stale_ids)))
            )
        removed += rowcount(
            await session.execute(delete(WeightRun).where(WeightRun.created_at < cutoff))
        )
        removed += rowcount(
            await session.execute(delete(CheckResult).where(CheckResult.created_at < cutoff))
        )
    return removed
