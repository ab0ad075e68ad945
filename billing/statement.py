"""An account's statement: the ledger as people read it.

The ledger (``ledger_entries``) writes three rows per request (the hold, its release and the
settlement); a statement shows one line per request with what it cost, which key and model
made it, and the balance after it, beside one line for each top-up, grant, refund and
adjustment. It is built from the ledger itself: every line is a ledger row that opens
something (a ``hold`` stands for its request; ``settle`` and ``release`` rows fold into it),
so a page is one keyset query on ``(account_id, id)``.

A request's ``amount`` is its net effect once closed (minus what was charged: 0 when released
without a charge) and minus what is still held while it is in flight (``status`` ``pending``);
``balance_after`` is the balance after the request's last ledger row.

Filters: kinds (``request``, ``topup``, ``grant``, ``refund``, ``adjustment``), key, model and
a date range; a key or model filter leaves only requests (the others belong to no key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.orm import aliased

from core.db.engine import Database
from core.db.tables.billing import ApiKey, Hold, LedgerEntry, UsageRecord

LINE_KINDS = ("request", "topup", "grant", "refund", "adjustment")
# Ledger rows that fold into the line of the request they belong to.
_FOLDED = ("settle", "release")


@dataclass(frozen=True)
class StatementFilter:
    kinds: tuple[str, ...] = ()  # empty: every kind
    key_id: int | None = None
    task: str | None = None
    start: date | None = None  # UTC days, inclusive
    end: date | None = None

    @property
    def requests_only(self) -> bool:
        return self.key_id is not None or self.task is not None


@dataclass(frozen=True)
class StatementLine:
    id: int  # the ledger row that opened the line (keyset cursor)
    kind: str  # request | topup | grant | refund | adjustment
    created_at: datetime
    amount: int  # net micro-credits: negative debits the account
    balance_after: int
    # Requests: the key, the model, what was delivered and how it ended.
    key_id: int | None = None
    key_name: str = ""
    task: str = ""
    request_id: str = ""
    status: str = ""  # ok, error, ... ; pending while held; released
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    steps: int = 0
    # Everything else: who and why.
    actor: str = ""
    reason: str = ""
    reference: str | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _where(account_id: int, filters: StatementFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [
        LedgerEntry.account_id == account_id,
        LedgerEntry.kind.not_in(_FOLDED),
    ]
    kinds = [kind for kind in filters.kinds if kind in LINE_KINDS] or list(LINE_KINDS)
    if filters.requests_only:
        kinds = [kind for kind in kinds if kind == "request"]
    ledger_kinds = ["hold" if kind == "request" else kind for kind in kinds]
    clauses.append(LedgerEntry.kind.in_(ledger_kinds or ["-"]))
    if filters.key_id is not None:
        clauses.append(LedgerEntry.key_id == filters.key_id)
    if filters.task is not None:
        clauses.append(Hold.task == filters.task)
    if filters.start is not None:
        clauses.append(LedgerEntry.created_at >= _day_start(filters.start))
    if filters.end is not None:
        clauses.append(LedgerEntry.created_at < _day_start(filters.end + timedelta(days=1)))
    return clauses


def _query(account_id: int, filters: StatementFilter) -> Select[Any]:
    last = aliased(LedgerEntry)
    final_balance = (
        select(last.balance_after)
        .where(last.hold_id == LedgerEntry.hold_id)
        .order_by(last.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(LedgerEntry, Hold, UsageRecord, ApiKey.name, final_balance)
        .outerjoin(Hold, Hold.id == LedgerEntry.hold_id)
        .outerjoin(UsageRecord, UsageRecord.hold_id == LedgerEntry.hold_id)
        .outerjoin(ApiKey, ApiKey.id == LedgerEntry.key_id)
        .where(and_(*_where(account_id, filters)))
    )


def _line(
    entry: LedgerEntry,
    hold: Hold | None,
    usage: UsageRecord | None,
    key_name: str | None,
    final_balance: int | None,
) -> StatementLine:
    if entry.kind != "hold" or hold is None:
        return StatementLine(
            id=entry.id,
            kind=entry.kind,
            created_at=entry.created_at,
            amount=entry.amount,
            balance_after=entry.balance_after,
            actor=entry.actor,
            reason=entry.reason,
            reference=entry.reference,
        )
    if hold.status == "open":
        amount, status = -hold.amount, "pending"
    else:
        amount = -(hold.cost or 0)
        status = usage.status if usage is not None else hold.status
    return StatementLine(
        id=entry.id,
        kind="request",
        created_at=entry.created_at,
        amount=amount,
        balance_after=int(final_balance if final_balance is not None else entry.balance_after),
        key_id=hold.key_id,
        key_name=key_name or f"key {hold.key_id}",
        task=hold.task,
        request_id=hold.request_id,
        status=status,
        input_tokens=usage.input_tokens if usage is not None else 0,
        output_tokens=usage.output_tokens if usage is not None else 0,
        images=usage.images if usage is not None else 0,
        steps=usage.steps if usage is not None else 0,
        actor=entry.actor,
    )


class Statements:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        account_id: int,
        filters: StatementFilter | None = None,
        *,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[StatementLine]:
        """Newest first; page with ``before_id`` = the last line's ``id``."""
        stmt = _query(account_id, filters or StatementFilter())
        if before_id is not None:
            stmt = stmt.where(LedgerEntry.id < before_id)
        stmt = stmt.order_by(LedgerEntry.id.desc()).limit(limit)
        async with self._db.read() as session:
            rows = (await session.execute(stmt)).all()
        return [_line(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def models(self, account_id: int) -> list[str]:
        """The models this account's requests used (the statement's model filter)."""
        stmt = select(Hold.task).where(Hold.account_id == account_id).distinct()
        async with self._db.read() as session:
            return sorted(str(task) for task in (await session.execute(stmt)).scalars())


__all__ = ["LINE_KINDS", "StatementFilter", "StatementLine", "Statements"]
