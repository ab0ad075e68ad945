"""Usage queries for an account: daily aggregates by day and model (keyset-paginated), the
per-request records, and who served each request (``receipts``: ``billing.provenance``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select

from billing.provenance import ReceiptLog
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import UsageDaily, UsageRecord
from core.errors import InvalidRequest

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class DayUsage:
    day: date
    task: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    images: int
    steps: int
    cost: int


@dataclass(frozen=True)
class RequestUsage:
    id: int
    request_id: str
    key_id: int
    task: str
    input_tokens: int
    output_tokens: int
    images: int
    steps: int
    cost: int
    miner_hotkey: str | None
    latency_ms: int | None
    status: str
    created_at: datetime


def encode_cursor(day: date, task: str) -> str:
    return base64.urlsafe_b64encode(f"{day.isoformat()}|{task}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[date, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        day, _, task = base64.urlsafe_b64decode(padded).decode().partition("|")
        return date.fromisoformat(day), task
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("invalid cursor", param="cursor") from None


class UsageService:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Who served each request, with the miner's receipt (``billing.provenance``).
        self.receipts = ReceiptLog(db)

    async def by_day(
        self,
        account_id: int,
        *,
        start: date | None = None,
        end: date | None = None,
        key_id: int | None = None,
        task: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[DayUsage], str | None]:
        """Rows newest day first (then by model), and the cursor of the next page (or None)."""
        end = end or utcnow().date()
        if start is None:
            days = min(DEFAULT_DAYS - 1, (end - date.min).days)  # no day before 0001-01-01
            start = end - timedelta(days=days)
        cols = [
            UsageDaily.requests,
            UsageDaily.errors,
            UsageDaily.input_tokens,
            UsageDaily.output_tokens,
            UsageDaily.images,
            UsageDaily.steps,
            UsageDaily.cost,
        ]
        stmt = (
            select(UsageDaily.day, UsageDaily.task, *(func.sum(c) for c in cols))
            .where(
                UsageDaily.account_id == account_id,
                UsageDaily.day >= start,
                UsageDaily.day <= end,
            )
            .group_by(UsageDaily.day, UsageDaily.task)
            .order_by(UsageDaily.day.desc(), UsageDaily.task)
            .limit(limit + 1)
        )
        if key_id is not None:
            stmt = stmt.where(UsageDaily.key_id == key_id)
        if task is not None:
            stmt = stmt.where(UsageDaily.task == task)
        if cursor is not None:
            after_day, after_task = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    UsageDaily.day < after_day,
                    and_(UsageDaily.day == after_day, UsageDaily.task > after_task),
                )
            )
        async with self._db.read() as session:
            rows = (await session.execute(stmt)).all()
        items = [DayUsage(row[0], row[1], *(int(v or 0) for v in row[2:])) for row in rows[:limit]]
        next_cursor = encode_cursor(items[-1].day, items[-1].task) if len(rows) > limit else None
        return items, next_cursor

    async def requests(
        self, account_id: int, *, limit: int = 100, before_id: int | None = None
    ) -> list[RequestUsage]:
        """Per-request records, newest first; page with ``before_id``."""
        stmt = (
            select(UsageRecord)
            .where(UsageRecord.account_id == account_id)
            .order_by(UsageRecord.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            stmt = stmt.where(UsageRecord.id < before_id)
        async with self._db.read() as session:
            return [
                RequestUsage(
                    r.id,
                    r.request_id,
                    r.key_id,
                    r.task,
                    r.input_tokens,
                    r.output_tokens,
                    r.images,
                    r.steps,
                    r.cost,
                    r.miner_hotkey,
                    r.latency_ms,
                    r.status,
                    r.created_at,
                )
                for r in (await session.execute(stmt)).scalars()
            ]
