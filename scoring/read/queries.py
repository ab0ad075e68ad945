"""The SQL behind ``scoring.read.board``: one aggregate query per list, each answered from an index
(``contenders (period_id, task, hotkey)`` and ``(task, hotkey, period_id)``,
``check_results (task, created_at)`` and ``(task, miner_hotkey, created_at)``, the run tables'
primary keys). Every function takes an open read session."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import (
    CheckResult,
    Contender,
    Node,
    Period,
    WeightRun,
    WeightRunFactor,
    WeightRunWeight,
)
from scoring.read.views import (
    CheckRow,
    ContenderRow,
    FactorSummary,
    PeriodSummary,
    ScorePoint,
    WeightRunView,
)
from scoring.weights.formula import CheckSample

BUCKETS = 10
# A check scoring below this counts as failed (hard failures score 0; SPEC §5).
FAILED_BELOW = 0.5
EVIDENCE_CHARS = 400
Pair = tuple[str, str]  # (task, hotkey)
_CONTENDER = (
    "task hotkey announced capacity concurrency quota consumed requests rate_limited failed"
)
_CONTENDER += " period_score"
_FACTOR = "task hotkey check_count quality speed_metric speed_bonus cubed_share task_weight"
_POINT = "period_score consumed quota requests rate_limited failed"
_RUN = "id created_at status message block period_id set_at"
_CHECK = "id task quality created_at organic work response_time_s"


def columns(table: type[Any], names: str) -> list[Any]:
    """``columns(Contender, "task hotkey")`` -> [Contender.task, Contender.hotkey]."""
    return [getattr(table, name) for name in names.split()]


S = TypeVar("S", bound=msgspec.Struct)


def _make(cls: type[S], values: Sequence[Any]) -> S:
    """A Struct from values in field order (the query selects them in that order)."""
    return cls(*values)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | Decimal | float) else None


def _int(value: object) -> int:
    """COUNT/SUM come back as int, or Decimal (PostgreSQL SUM of BIGINT)."""
    return int(value) if isinstance(value, int | Decimal | float) else 0


async def nodes(session: AsyncSession, netuid: int, hotkey: str | None) -> dict[str, Node]:
    stmt = select(Node).where(Node.netuid == netuid)
    if hotkey is not None:
        stmt = stmt.where(Node.hotkey == hotkey)
    return {row.hotkey: row for row in (await session.scalars(stmt)).all()}


async def period_contenders(
    session: AsyncSession, status: str, hotkey: str | None
) -> tuple[int | None, dict[Pair, ContenderRow]]:
    """The latest period with ``status`` and its contenders."""
    period_id = await session.scalar(
        select(Period.id).where(Period.status == status).order_by(Period.id.desc()).limit(1)
    )
    if period_id is None:
        return None, {}
    c = Contender
    stmt = select(*columns(c, _CONTENDER)).where(c.period_id == period_id)
    if hotkey is not None:
        stmt = stmt.where(c.hotkey == hotkey)
    rows = {
        (row[0], row[1]): _make(ContenderRow, (period_id, *row[2:]))
        for row in await session.execute(stmt)
    }
    return period_id, rows


async def factors(
    session: AsyncSession, run_id: int | None, hotkey: str | None
) -> dict[Pair, FactorSummary]:
    if run_id is None:
        return {}
    f = WeightRunFactor
    stmt = select(*columns(f, _FACTOR)).where(f.run_id == run_id)
    if hotkey is not None:
        stmt = stmt.where(f.hotkey == hotkey)
    return {(row[0], row[1]): _make(FactorSummary, row[2:]) for row in await session.execute(stmt)}


async def weights(
    session: AsyncSession, run_id: int | None, hotkey: str | None
) -> dict[str, tuple[float, int]]:
    if run_id is None:
        return {}
    w = WeightRunWeight
    stmt = select(w.hotkey, w.weight, w.weight_u16).where(w.run_id == run_id)
    if hotkey is not None:
        stmt = stmt.where(w.hotkey == hotkey)
    return {row[0]: (row[1], row[2]) for row in await session.execute(stmt)}


def failed_check() -> ColumnElement[bool]:
    """``quality < 0.5``, spelled as the partial index ``ix_check_results_failed`` is (a bound
    parameter would keep the planner from proving that the index applies)."""
    return CheckResult.quality < literal_column(repr(FAILED_BELOW))


async def failed_counts(
    session: AsyncSession, tasks: Sequence[str], since: datetime, hotkey: str | None
) -> dict[Pair, int]:
    """Failed checks per (task, miner) since ``since`` (from the partial index alone)."""
    r = CheckResult
    stmt = (
        select(r.task, r.miner_hotkey, func.count())
        .where(failed_check(), r.created_at >= since, r.task.in_(tasks))
        .group_by(r.task, r.miner_hotkey)
    )
    if hotkey is not None:
        stmt = stmt.where(r.miner_hotkey == hotkey)
    return {(row[0], row[1]): _int(row[2]) for row in await session.execute(stmt)}


async def score_history(
    session: AsyncSession, hotkey: str, tasks: Sequence[str], points: int
) -> dict[str, list[ScorePoint]]:
    """The miner's contenders of the last ``points`` closed periods, per task, oldest first."""
    first = await session.scalar(
        select(Period.id)
        .where(Period.status == "closed")
        .order_by(Period.id.desc())
        .offset(points - 1)
        .limit(1)
    )
    c = Contender
    stmt = (
        select(*columns(c, "task period_id"), Period.started_at, *columns(c, _POINT))
        .join(Period, Period.id == c.period_id)
        .where(c.task.in_(tasks), c.hotkey == hotkey, c.closed.is_(True))
        .order_by(c.period_id)
    )
    if first is not None:
        stmt = stmt.where(c.period_id >= first)
    history: dict[str, list[ScorePoint]] = defaultdict(list)
    for row in await session.execute(stmt):
        history[row[0]].append(_make(ScorePoint, row[1:]))
    return dict(history)


async def samples(
    session: AsyncSession, hotkey: str, tasks: Sequence[str], since: datetime
) -> dict[str, list[tuple[CheckSample, datetime]]]:
    """The miner's check results since ``since``, per task, as the weight calculation reads
    them (``CheckSample``), with their time."""
    r = CheckResult
    stmt = select(r.task, r.quality, r.work, r.response_time_s, r.created_at).where(
        r.task.in_(tasks), r.miner_hotkey == hotkey, r.created_at >= since
    )
    found: dict[str, list[tuple[CheckSample, datetime]]] = defaultdict(list)
    for task, quality, work, seconds, created in await session.execute(stmt):
        found[task].append((CheckSample(quality, work, seconds), created))
    return dict(found)


def evidence_text(evidence: Any) -> str:
    if not evidence:
        return ""
    if isinstance(evidence, dict):
        shown = ", ".join(f"{key}={value}" for key, value in evidence.items())
    else:
        shown = json.dumps(evidence, default=str)
    return shown if len(shown) <= EVIDENCE_CHARS else shown[: EVIDENCE_CHARS - 1] + "…"


async def failures(
    session: AsyncSession, hotkey: str, tasks: Sequence[str], limit: int
) -> list[CheckRow]:
    """The miner's latest failed checks, with the checker's reason and evidence."""
    r, job = CheckResult, CheckJobRecord
    stmt = (
        select(*columns(r, _CHECK), job.reason, job.evidence)
        .outerjoin(job, job.result_id == r.id)
        .where(failed_check(), r.miner_hotkey == hotkey, r.task.in_(tasks))
        .order_by(r.created_at.desc(), r.id.desc())
        .limit(limit)
    )
    return [
        CheckRow(*row[:7], reason=row[7] or "", evidence=evidence_text(row[8]))
        for row in await session.execute(stmt)
    ]


def _hour_and_bucket(dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Hours since the epoch of a check's time and its score bucket (0–9), as integers."""
    created, score = CheckResult.created_at, CheckResult.quality
    top = BUCKETS - 1
    if dialect == "postgresql":
        pg_hour = cast(func.floor(func.extract("epoch", created) / 3600), BigInteger)
        return pg_hour, func.least(cast(func.floor(score * BUCKETS), Integer), top)
    hour = cast(func.strftime("%s", created), Integer) / 3600
    return hour, func.min(cast(score * BUCKETS, Integer), top)


async def check_histograms(
    session: AsyncSession,
    tasks: Sequence[str],
    since: datetime,
    dialect: str,
    *,
    after_id: int = 0,
    up_to: int | None = None,
) -> list[tuple[str, int, int, int]]:
    """(task, epoch hour, score bucket, checks) of the check results made since ``since``
    whose id is above ``after_id`` (and at most ``up_to``)."""
    r = CheckResult
    hour, bucket = _hour_and_bucket(dialect)
    stmt = (
        select(r.task, hour.label("hour"), bucket.label("bucket"), func.count())
        .where(r.task.in_(tasks), r.created_at >= since, r.id > after_id)
        .group_by(r.task, text("hour"), text("bucket"))
    )
    if up_to is not None:
        stmt = stmt.where(r.id <= up_to)
    return [
        (row[0], _int(row[1]), _int(row[2]), _int(row[3])) for row in await session.execute(stmt)
    ]


async def weight_runs(
    session: AsyncSession, *, limit: int, status: str | None = None
) -> list[WeightRunView]:
    w = WeightRunWeight
    weighted = select(func.count()).where(w.run_id == WeightRun.id).scalar_subquery()
    positive = (
        select(func.count()).where(and_(w.run_id == WeightRun.id, w.weight_u16 > 0))
    ).scalar_subquery()
    stmt = select(WeightRun, weighted, positive).order_by(WeightRun.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(WeightRun.status == status)
    return [
        _make(WeightRunView, [*(getattr(run, n) for n in _RUN.split()), _int(count), _int(nonzero)])
        for run, count, nonzero in await session.execute(stmt)
    ]


async def periods(session: AsyncSession, limit: int) -> list[PeriodSummary]:
    recent = (await session.scalars(select(Period).order_by(Period.id.desc()).limit(limit))).all()
    if not recent:
        return []
    c = Contender
    routable = func.sum(case((and_(c.capacity > 0, c.concurrency > 0), 1), else_=0))
    stmt = (
        select(
            c.period_id,
            func.count(),
            routable,
            func.count(func.distinct(c.hotkey)),
            func.sum(c.requests),
            func.sum(c.rate_limited),
            func.sum(c.failed),
            func.avg(c.period_score),
        )
        .where(c.period_id.in_([p.id for p in recent]))
        .group_by(c.period_id)
    )
    totals = {row[0]: row[1:] for row in await session.execute(stmt)}
    empty = (0, 0, 0, 0, 0, 0, None)
    summaries = []
    for p in recent:
        t = totals.get(p.id, empty)
        own = (p.id, p.status, p.started_at, p.ends_at, p.closed_at, p.block)
        summaries.append(_make(PeriodSummary, [*own, *(_int(v) for v in t[:6]), _float(t[6])]))
    return summaries
