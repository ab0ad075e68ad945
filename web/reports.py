"""Read-only reporting queries for the dashboard's charts and lists.

Totals over time always come from the daily aggregates (``usage_daily``, one row per day, key
and task, maintained by billing's settle), never from the per-request records, so a year of
traffic costs a few hundred rows per chart. Lists are keyset-paginated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, ColumnElement, cast, func, or_, select

from core.db.engine import Database
from core.db.tables.billing import Account, ApiKey, StripePayment, UsageDaily

PAGE = 50


@dataclass(frozen=True)
class Totals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    steps: int = 0
    cost: int = 0

    @classmethod
    def add_up(cls, items: Iterable[Totals]) -> Totals:
        fields = ("requests", "errors", "input_tokens", "output_tokens", "images", "steps", "cost")
        sums = dict.fromkeys(fields, 0)
        for item in items:
            for name in fields:
                sums[name] += getattr(item, name)
        return cls(**sums)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class DayTotals:
    day: date
    totals: Totals


@dataclass(frozen=True)
class ModelTotals:
    task: str
    totals: Totals


@dataclass(frozen=True)
class AccountSpend:
    account_id: int
    name: str
    totals: Totals


@dataclass(frozen=True)
class AccountRow:
    id: int
    name: str
    email: str | None
    status: str
    balance: int
    keys: int
    created_at: datetime


_SUMS = (
    UsageDaily.requests,
    UsageDaily.errors,
    UsageDaily.input_tokens,
    UsageDaily.output_tokens,
    UsageDaily.images,
    UsageDaily.steps,
    UsageDaily.cost,
)


def _sums() -> list[ColumnElement[int]]:
    # BIGINT, not NUMERIC: PostgreSQL's SUM(bigint) is NUMERIC (Decimal per value in Python).
    return [cast(func.coalesce(func.sum(column), 0), BigInteger) for column in _SUMS]


def _int(value: object) -> int:
    """SUM() comes back as int (SQLite) or Decimal (PostgreSQL, for BIGINT columns)."""
    return int(value) if isinstance(value, int | Decimal | float) else 0


def _totals(values: tuple[object, ...] | list[object]) -> Totals:
    return Totals(*(_int(v) for v in values))


def _where(start: date, end: date, account_id: int | None) -> list[ColumnElement[bool]]:
    clauses = [UsageDaily.day >= start, UsageDaily.day <= end]
    if account_id is not None:
        clauses.append(UsageDaily.account_id == account_id)
    return clauses


def day_range(days: int, today: date) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today


class Reports:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def daily(
        self, start: date, end: date, *, account_id: int | None = None
    ) -> list[DayTotals]:
        """One entry per day from ``start`` to ``end`` (days without traffic are zeros)."""
        stmt = (
            select(UsageDaily.day, *_sums())
            .where(*_where(start, end, account_id))
            .group_by(UsageDaily.day)
        )
        async with self._db.read() as session:
            found = {row[0]: _totals(list(row[1:])) for row in await session.execute(stmt)}
        span = (end - start).days + 1
        return [
            DayTotals(day, found.get(day, Totals()))
            for day in (start + timedelta(days=i) for i in range(span))
        ]

    async def daily_by_model(
        self, start: date, end: date, *, account_id: int | None = None
    ) -> tuple[list[DayTotals], list[ModelTotals]]:
        """``daily`` and ``by_model`` from one pass over the aggregates (busy pages need both)."""
        stmt = (
            select(UsageDaily.day, UsageDaily.task, *_sums())
            .where(*_where(start, end, account_id))
            .group_by(UsageDaily.day, UsageDaily.task)
        )
        async with self._db.read() as session:
            rows = [(row[0], row[1], _totals(list(row[2:]))) for row in await session.execute(stmt)]
        per_day: dict[date, list[Totals]] = {}
        per_task: dict[str, list[Totals]] = {}
        for day, task, totals in rows:
            per_day.setdefault(day, []).append(totals)
            per_task.setdefault(task, []).append(totals)
        span = (end - start).days + 1
        daily = [
            DayTotals(day, Totals.add_up(per_day.get(day, [])))
            for day in (start + timedelta(days=i) for i in range(span))
        ]
        models = [ModelTotals(task, Totals.add_up(per_task[task])) for task in sorted(per_task)]
        return daily, models

    async def by_model(
        self, start: date, end: date, *, account_id: int | None = None
    ) -> list[ModelTotals]:
        stmt = (
            select(UsageDaily.task, *_sums())
            .where(*_where(start, end, account_id))
            .group_by(UsageDaily.task)
            .order_by(UsageDaily.task)
        )
        async with self._db.read() as session:
            return [
                ModelTotals(row[0], _totals(list(row[1:]))) for row in await session.execute(stmt)
            ]

    async def top_accounts(self, start: date, end: date, *, limit: int = 10) -> list[AccountSpend]:
        spend = func.coalesce(func.sum(UsageDaily.cost), 0)
        inner = (
            select(UsageDaily.account_id, *_sums())
            .where(*_where(start, end, None))
            .group_by(UsageDaily.account_id)
            .order_by(spend.desc(), UsageDaily.account_id)
            .limit(limit)
            .subquery()
        )
        stmt = select(inner, Account.name).join(Account, Account.id == inner.c.account_id)
        async with self._db.read() as session:
            rows = [
                AccountSpend(int(row[0]), str(row[-1]), _totals(list(row[1:-1])))
                for row in await session.execute(stmt)
            ]
        return sorted(rows, key=lambda r: (-r.totals.cost, r.account_id))

    async def topups(self, start: date, end: date) -> tuple[int, int]:
        """(amount paid in the currency's smallest unit, micro-credits bought) in the range."""
        since = datetime.combine(start, time.min, tzinfo=UTC)
        until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
        stmt = select(
            func.coalesce(func.sum(StripePayment.amount_cents), 0),
            func.coalesce(func.sum(StripePayment.credits), 0),
        ).where(StripePayment.created_at >= since, StripePayment.created_at < until)
        async with self._db.read() as session:
            cents, credits = (await session.execute(stmt)).one()
        return _int(cents), _int(credits)

    async def accounts(
        self, *, query: str = "", after_id: int | None = None, limit: int = PAGE
    ) -> tuple[list[AccountRow], int | None]:
        """A page of accounts by id (optionally matching name/e-mail) and the next page's
        ``after_id`` (None on the last page)."""
        keys = (
            select(func.count(ApiKey.id))
            .where(ApiKey.account_id == Account.id, ApiKey.revoked.is_(False))
            .scalar_subquery()
        )
        stmt = select(Account, keys).order_by(Account.id).limit(limit + 1)
        if after_id is not None:
            stmt = stmt.where(Account.id > after_id)
        if query.strip():
            pattern = f"%{query.strip().lower()}%"
            conditions: list[ColumnElement[bool]] = [
                func.lower(Account.name).like(pattern),
                func.lower(func.coalesce(Account.email, "")).like(pattern),
            ]
            if query.strip().isdigit():
                conditions.append(Account.id == int(query.strip()))
            stmt = stmt.where(or_(*conditions))
        async with self._db.read() as session:
            rows = [
                AccountRow(a.id, a.name, a.email, a.status, a.balance, int(n), a.created_at)
                for a, n in await session.execute(stmt)
            ]
        following = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], following

    async def counts(self) -> tuple[int, int]:
        """(accounts, active keys)."""
        async with self._db.read() as session:
            accounts = (await session.execute(select(func.count(Account.id)))).scalar_one()
            keys = (
                await session.execute(
                    select(func.count(ApiKey.id)).where(ApiKey.revoked.is_(False))
                )
            ).scalar_one()
        return int(accounts), int(keys)
