"""The credit ledger on a session: every balance change is an account update plus ledger rows
in the caller's transaction, and ``verify`` proves the books.

Rules every caller follows (they are what make ``balance == SUM(ledger)`` hold under any
concurrency):

- Update ``accounts.balance`` first, then insert the ledger rows, in one transaction
  (``Database.transaction()``). The update takes the account's row lock on PostgreSQL (the
  database write lock on SQLite), so rows of one account are inserted, and numbered, in commit
  order and ``balance_after`` forms a running sum.
- Debits that must not overdraw use ``debit_if_covered`` (a conditional update); refunds and
  adjustments use ``apply`` and may leave a debt, which blocks further holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import BillingNotFound
from core.db.base import utcnow
from core.db.tables.billing import Account, Hold, LedgerEntry

LEDGER: Table = LedgerEntry.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Entry:
    """One ledger row to append (the account and balance are filled in by ``append``)."""

    kind: str
    amount: int
    actor: str
    reason: str = ""
    hold_id: int | None = None
    key_id: int | None = None
    reference: str | None = None


async def debit_if_covered(session: AsyncSession, account_id: int, amount: int) -> int | None:
    """Take ``amount`` from an active account only if its balance covers it; the new balance,
    or None when it does not fit (or the account is missing or suspended)."""
    stmt = (
        update(Account)
        .where(Account.id == account_id, Account.status == "active", Account.balance >= amount)
        .values(balance=Account.balance - amount, updated_at=utcnow())
        .returning(Account.balance)
    )
    result = await session.execute(stmt)
    balance: int | None = result.scalar_one_or_none()
    return balance


async def apply(session: AsyncSession, account_id: int, delta: int) -> int:
    """Add ``delta`` (either sign) to the balance unconditionally; the new balance."""
    stmt = (
        update(Account)
        .where(Account.id == account_id)
        .values(balance=Account.balance + delta, updated_at=utcnow())
        .returning(Account.balance)
    )
    balance = (await session.execute(stmt)).scalar_one_or_none()
    if balance is None:
        raise BillingNotFound(f"no account {account_id}")
    return int(balance)


async def append(
    session: AsyncSession, account_id: int, balance_after: int, entries: Sequence[Entry]
) -> None:
    """Insert ``entries`` in order; ``balance_after`` is the balance after the last one (the
    value the account update returned)."""
    running = balance_after - sum(entry.amount for entry in entries)
    rows = []
    now = utcnow()
    for entry in entries:
        running += entry.amount
        rows.append(
            {
                "account_id": account_id,
                "kind": entry.kind,
                "amount": entry.amount,
                "balance_after": running,
                "hold_id": entry.hold_id,
                "key_id": entry.key_id,
                "actor": entry.actor,
                "reason": entry.reason[:500],
                "reference": entry.reference[:255] if entry.reference else None,
                "created_at": now,
            }
        )
    # Core insert on the table (no ORM unit of work: this runs on every request).
    await session.execute(insert(LEDGER), rows)


async def post(session: AsyncSession, account_id: int, entry: Entry) -> int:
    """An unconditional balance change with its ledger row (grants, top-ups, refunds,
    adjustments); the new balance."""
    balance = await apply(session, account_id, entry.amount)
    await append(session, account_id, balance, [entry])
    return balance


@dataclass
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    # (account id, cached balance, ledger sum)
    mismatches: list[tuple[int, int, int]] = field(default_factory=list)
    # (account id, entry id) where balance_after is not the running sum
    chain_breaks: list[tuple[int, int]] = field(default_factory=list)
    # Human-readable problems with holds (missing or doubled hold/settle/release rows).
    hold_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.chain_breaks or self.hold_problems)


async def _check_balances(
    session: AsyncSession, report: VerifyReport, account_ids: Sequence[int] | None
) -> None:
    sums = (
        select(
            LedgerEntry.account_id.label("account_id"),
            func.coalesce(func.sum(LedgerEntry.amount), 0).label("total"),
            func.count().label("entries"),
        )
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    stmt = select(Account.id, Account.balance, sums.c.total, sums.c.entries).outerjoin(
        sums, sums.c.account_id == Account.id
    )
    if account_ids is not None:
        stmt = stmt.where(Account.id.in_(account_ids))
    for account_id, balance, total, entries in (await session.execute(stmt)).all():
        report.accounts += 1
        report.entries += int(entries or 0)
        if int(balance) != int(total or 0):
            report.mismatches.append((int(account_id), int(balance), int(total or 0)))


async def _check_chain(
    session: AsyncSession, report: VerifyReport, account_ids: Sequence[int] | None
) -> None:
    running = (
        func.sum(LedgerEntry.amount)
        .over(partition_by=LedgerEntry.account_id, order_by=LedgerEntry.id)
        .label("running")
    )
    inner = select(LedgerEntry.account_id, LedgerEntry.id, LedgerEntry.balance_after, running)
    if account_ids is not None:
        inner = inner.where(LedgerEntry.account_id.in_(account_ids))
    sub = inner.subquery()
    stmt = (
        select(sub.c.account_id, sub.c.id)
        .where(sub.c.balance_after != sub.c.running)
        .order_by(sub.c.account_id, sub.c.id)
        .limit(1000)
    )
    report.chain_breaks.extend((int(a), int(e)) for a, e in (await session.execute(stmt)).all())


async def _check_holds(
    session: AsyncSession, report: VerifyReport, account_ids: Sequence[int] | None
) -> None:
    def count_of(kind: str) -> ColumnElement[int]:
        return func.count(LedgerEntry.id).filter(LedgerEntry.kind == kind)

    def sum_of(kind: str) -> ColumnElement[int]:
        return func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == kind), 0)

    stmt = (
        select(
            Hold.id,
            Hold.status,
            Hold.amount,
            Hold.cost,
            count_of("hold"),
            sum_of("hold"),
            count_of("settle"),
            sum_of("settle"),
            count_of("release"),
            sum_of("release"),
        )
        .outerjoin(LedgerEntry, LedgerEntry.hold_id == Hold.id)
        .group_by(Hold.id, Hold.status, Hold.amount, Hold.cost)
    )
    if account_ids is not None:
        stmt = stmt.where(Hold.account_id.in_(account_ids))
    for row in (await session.execute(stmt)).all():
        hold_id, status, amount, cost, n_hold, s_hold, n_settle, s_settle, n_rel, s_rel = row
        problems = []
        if n_hold != 1 or s_hold != -amount:
            problems.append(f"{n_hold} hold rows summing {s_hold} (expected one of {-amount})")
        if status == "open" and (n_settle or n_rel):
            problems.append("open but has settle/release rows")
        if status != "open" and (n_rel != 1 or s_rel != amount):
            problems.append(f"{n_rel} release rows summing {s_rel} (expected one of {amount})")
        if status == "settled" and (n_settle != 1 or s_settle != -(cost or 0)):
            problems.append(f"settled at {cost} but settle rows sum {s_settle}")
        if status in ("released", "expired") and n_settle:
            problems.append(f"{status} but has settle rows")
        if cost is not None and not 0 <= cost <= amount:
            problems.append(f"cost {cost} outside [0, {amount}]")
        report.hold_problems.extend(f"hold {hold_id}: {p}" for p in problems)


async def verify(session: AsyncSession, account_ids: Sequence[int] | None = None) -> VerifyReport:
    """Check every (or the given) account: cached balance == ledger sum, ``balance_after`` is a
    running sum, and every hold has exactly the rows its status implies."""
    report = VerifyReport()
    await _check_balances(session, report, account_ids)
    await _check_chain(session, report, account_ids)
    await _check_holds(session, report, account_ids)
    return report
