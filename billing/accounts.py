"""Customer accounts: create, list, suspend/activate, grant or adjust credits, balance, ledger
and the statement people read (``billing.statement``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from billing import ledger
from billing.errors import BillingNotFound
from billing.keys.service import KeyInvalidator
from billing.statement import StatementFilter, StatementLine, Statements
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Account, ApiKey, Hold, LedgerEntry


@dataclass(frozen=True)
class AccountInfo:
    id: int
    name: str
    email: str | None
    status: str
    balance: int
    created_at: datetime


@dataclass(frozen=True)
class Balance:
    account_id: int
    # What new holds can use (the ledger sum).
    available: int
    # Reserved by requests in flight (already taken out of ``available``).
    held: int


@dataclass(frozen=True)
class LedgerLine:
    id: int
    kind: str
    amount: int
    balance_after: int
    actor: str
    reason: str
    reference: str | None
    hold_id: int | None
    created_at: datetime


def _info(row: Account) -> AccountInfo:
    return AccountInfo(row.id, row.name, row.email, row.status, row.balance, row.created_at)


class AccountService:
    def __init__(self, db: Database, invalidator: KeyInvalidator | None = None) -> None:
        self._db = db
        self._invalidator = invalidator
        self._statements = Statements(db)

    async def create(self, name: str, *, email: str | None = None) -> AccountInfo:
        now = utcnow()
        row = Account(
            name=name, email=email, status="active", balance=0, created_at=now, updated_at=now
        )
        async with self._db.transaction() as session:
            session.add(row)
            await session.flush()
            return _info(row)

    async def list_accounts(self) -> list[AccountInfo]:
        async with self._db.read() as session:
            rows = (await session.execute(select(Account).order_by(Account.id))).scalars()
            return [_info(row) for row in rows]

    async def get(self, account_id: int) -> AccountInfo:
        async with self._db.read() as session:
            row = await session.get(Account, account_id)
            if row is None:
                raise BillingNotFound(f"no account {account_id}")
            return _info(row)

    async def find(self, name: str) -> AccountInfo | None:
        async with self._db.read() as session:
            row = (
                (
                    await session.execute(
                        select(Account).where(Account.name == name).order_by(Account.id)
                    )
                )
                .scalars()
                .first()
            )
            return _info(row) if row is not None else None

    async def set_status(self, account_id: int, status: str) -> AccountInfo:
        """``suspended`` (its keys get 403 within seconds, holds are refused) or ``active``."""
        if status not in ("active", "suspended"):
            raise ValueError(f"unknown account status {status!r}")
        async with self._db.transaction() as session:
            row = await session.get(Account, account_id, with_for_update=True)
            if row is None:
                raise BillingNotFound(f"no account {account_id}")
            row.status = status
            row.updated_at = utcnow()
            await session.flush()
            info = _info(row)
            hashes = list(
                (
                    await session.execute(
                        select(ApiKey.secret_hash).where(ApiKey.account_id == account_id)
                    )
                ).scalars()
            )
        if self._invalidator is not None and hashes:
            await self._invalidator.invalidate(hashes)
        return info

    async def grant(
        self,
        account_id: int,
        amount: int,
        *,
        actor: str,
        reason: str,
        kind: str = "grant",
        reference: str | None = None,
    ) -> int:
        """Credit (``grant``: amount > 0) or correct (``adjustment``: either sign) an account
        by hand; the ledger row names the actor and the reason. The new balance."""
        if kind == "grant" and amount <= 0:
            raise ValueError("a grant must be positive (use an adjustment to debit)")
        if kind not in ("grant", "adjustment"):
            raise ValueError(f"not a manual ledger kind: {kind!r}")
        if not reason.strip():
            raise ValueError("a reason is required")
        if not actor.strip():
            raise ValueError("an actor is required")
        async with self._db.transaction() as session:
            return await ledger.post(
                session,
                account_id,
                ledger.Entry(kind, amount, actor, reason, reference=reference),
            )

    async def balance(self, account_id: int) -> Balance:
        async with self._db.read() as session:
            available = (
                await session.execute(select(Account.balance).where(Account.id == account_id))
            ).scalar_one_or_none()
            if available is None:
                raise BillingNotFound(f"no account {account_id}")
            held = (
                await session.execute(
                    select(func.coalesce(func.sum(Hold.amount), 0)).where(
                        Hold.account_id == account_id, Hold.status == "open"
                    )
                )
            ).scalar_one()
        return Balance(account_id, int(available), int(held))

    async def ledger_entries(
        self, account_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> list[LedgerLine]:
        """Newest first; page with ``before_id`` = the last id of the previous page."""
        stmt = (
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            stmt = stmt.where(LedgerEntry.id < before_id)
        async with self._db.read() as session:
            return [
                LedgerLine(
                    row.id,
                    row.kind,
                    row.amount,
                    row.balance_after,
                    row.actor,
                    row.reason,
                    row.reference,
                    row.hold_id,
                    row.created_at,
                )
                for row in (await session.execute(stmt)).scalars()
            ]

    async def statement(
        self,
        account_id: int,
        filters: StatementFilter | None = None,
        *,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[StatementLine]:
        """The ledger as people read it: one line per request (cost, key, model, balance
        after), top-ups, grants, refunds and adjustments each their own; newest first, page
        with ``before_id`` (``billing.statement``)."""
        return await self._statements.page(account_id, filters, limit=limit, before_id=before_id)

    async def statement_models(self, account_id: int) -> list[str]:
        return await self._statements.models(account_id)

    async def verify(self, account_ids: list[int] | None = None) -> ledger.VerifyReport:
        async with self._db.read() as session:
            return await ledger.verify(session, account_ids)
