"""Hold → settle | release, and the sweeper: the money path of every request.

Each public method is one unit of work (``Database.transaction()``): it either happens
completely or not at all. The gateway calls, per request:

1. ``hold(key, task, estimate, request_id=...)`` before dispatch. Reserves the cost of the
   largest possible usage with a conditional debit; raises ``InsufficientCredits`` (402,
   ``x-should-retry: false``), ``SpendCapExceeded`` (402) or ``AccountSuspended`` (403).
2. ``settle(hold, usage, ...)`` once the response is done (or the client went away): charges the
   delivered usage (never more than the hold), releases the rest, writes the usage record and
   the daily aggregate. Idempotent per hold: a second call changes nothing and returns the
   first result (``replayed=True``).
3. or ``release(hold, reason=...)`` when nothing was delivered: charges nothing, still writes a
   usage record (cost 0) with the status. Only then may the gateway answer 5xx, so the SDKs'
   automatic retries never bill twice.

Holds expire (``task.timeouts.total_s + hold_grace_s``); ``sweep_expired_holds`` releases the
ones a crashed gateway left open.

On PostgreSQL, the holds of one account, and its settles and releases, go through a group
commit (``billing.batching``): one transaction per account in flight, requests arriving
meanwhile join the next (``billing.fastbatch``; alone, one statement: ``billing.fastpath``), so
a busy account's row is locked once per batch instead of once per request.

A settle that arrives after its hold was swept charges nothing (the gateway overran its own
deadline) and is reported with ``status="expired"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import fastpath, ledger
from billing.costs import Usage, cost
from billing.errors import AccountSuspended, InsufficientCredits, SpendCapExceeded
from billing.fastbatch import CloseAsk, HoldAsk
from billing.holds import Hold, Settlement, hold_actor, hold_from_row
from billing.keys.store import KeyContext
from billing.lanes import Lanes
from billing.money import format_credits
from billing.price_book import PriceBook
from billing.records import record_usage
from core.db.base import utcnow
from core.db.dialect import rowcount, upsert_increment
from core.db.engine import Database
from core.db.tables.billing import Account, KeySpend, UsageRecord
from core.db.tables.billing import Hold as HoldRow
from protocol.catalog import Task

log = logging.getLogger(__name__)

# Core inserts on the table: the hot path skips the ORM unit of work.
HOLDS: Table = HoldRow.__table__  # type: ignore[assignment]


class BillingService:
    def __init__(
        self,
        db: Database,
        prices: PriceBook,
        *,
        hold_grace_s: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        fast: fastpath.Connections | None = None,
        fast_close: fastpath.Connections | None = None,
    ) -> None:
        self._db = db
        self.prices = prices
        self._grace = hold_grace_s
        self._clock = clock
        # Holds the sweeper released after their expiry, since this process started (a hold
        # should be settled or released by its request; see ``sweep_expired_holds``).
        self.holds_expired = 0
        # PostgreSQL: per-request holds and settles are single statements (billing.fastpath).
        if fast is None and db.dialect == "postgresql":
            fast = fastpath.EngineConnections(db.engine)
        self._fast = fast
        # Settles and releases (``fast_close``: may be a non-durable pool, see Billing.create).
        self._fast_close = fast_close or fast
        # The group commits of the fast path (None without one).
        self._lanes = (
            Lanes(fast, self._fast_close, clock=clock, release=self.release)
            if fast is not None and self._fast_close is not None
            else None
        )

    # -- hold ------------------------------------------------------------------------------

    async def quote(self, task: Task, usage: Usage) -> int:
        """Micro-credits ``usage`` of ``task`` costs at today's prices."""
        return cost(task.kind, await self.prices.price(task), usage)

    async def hold(
        self,
        key: KeyContext,
        task: Task,
        estimate: Usage,
        *,
        request_id: str,
        expires_in: float | None = None,
    ) -> Hold:
        price = await self.prices.price(task)
        amount = cost(task.kind, price, estimate)
        now = self._clock()
        ttl = expires_in if expires_in is not None else task.timeouts.total_s + self._grace
        day = f"d{now:%Y-%m-%d}" if key.daily_spend_cap is not None else None
        month = f"m{now:%Y-%m}" if key.monthly_spend_cap is not None else None
        expires_at = now + timedelta(seconds=ttl)
        if self._lanes is not None and day is None and month is None:
            ask = HoldAsk(key, task, amount, price, request_id, expires_at)
            hold, account = await self._lanes.hold(ask)
            if hold is None:
                _refuse(account, amount)
            assert hold is not None
            return hold
        async with self._db.transaction() as session:
            balance = await ledger.debit_if_covered(session, key.account_id, amount)
            if balance is None:
                await self._refuse(session, key, amount)
            assert balance is not None
            if day is not None and key.daily_spend_cap is not None:
                await self._count_spend(session, key, day, amount, key.daily_spend_cap, "daily")
            if month is not None and key.monthly_spend_cap is not None:
                await self._count_spend(
                    session, key, month, amount, key.monthly_spend_cap, "monthly"
                )
            hold_id = (
                await session.execute(
                    insert(HOLDS)
                    .values(
                        account_id=key.account_id,
                        key_id=key.key_id,
                        request_id=request_id[:128],
                        task=task.id,
                        kind=task.kind,
                        amount=amount,
                        status="open",
                        price_input=price.input_per_million,
                        price_output=price.output_per_million,
                        price_step=price.per_step,
                        spend_day=day,
                        spend_month=month,
                        created_at=now,
                        expires_at=expires_at,
                    )
                    .returning(HOLDS.c.id)
                )
            ).scalar_one()
            entry = ledger.Entry(
                "hold", -amount, key.actor, f"hold for {task.id}", hold_id, key.key_id, request_id
            )
            await ledger.append(session, key.account_id, balance, [entry])
        return Hold(
            id=hold_id,
            account_id=key.account_id,
            key_id=key.key_id,
            request_id=request_id,
            task=task.id,
            kind=task.kind,
            amount=amount,
            price=price,
            expires_at=expires_at,
            balance=balance,
            spend_day=day,
            spend_month=month,
        )

    async def drain(self) -> None:
        """Wait for the fast path's batches in flight (at shutdown)."""
        if self._lanes is not None:
            await self._lanes.drain()

    async def _refuse(self, session: AsyncSession, key: KeyContext, amount: int) -> None:
        row = (
            await session.execute(
                select(Account.status, Account.balance).where(Account.id == key.account_id)
            )
        ).one_or_none()
        _refuse((row.status, row.balance) if row is not None else None, amount)

    async def _count_spend(
        self, session: AsyncSession, key: KeyContext, period: str, amount: int, cap: int, label: str
    ) -> None:
        fits = amount <= cap
        if fits:
            stmt = upsert_increment(
                self._db.dialect,
                KeySpend,
                {"key_id": key.key_id, "period": period, "amount": amount},
                ["key_id", "period"],
                ["amount"],
                where=lambda table, excluded: table.c.amount + excluded.amount <= cap,
            )
            fits = rowcount(await session.execute(stmt)) == 1
        if not fits:
            raise SpendCapExceeded(
                f"This API key's {label} spend cap of {format_credits(cap)} credits would be "
                "exceeded by this request."
            )

    # -- settle / release ------------------------------------------------------------------

    async def settle(
        self,
        hold: Hold,
        usage: Usage,
        *,
        miner_hotkey: str | None = None,
        latency_ms: int | None = None,
        status: str = "ok",
    ) -> Settlement:
        full = cost(hold.kind, hold.price, usage)
        if full > hold.amount:
            log.warning(
                "hold %s: delivered usage costs %d, more than the %d held; charging the hold",
                hold.id,
                full,
                hold.amount,
            )
        charged = min(full, hold.amount)
        return await self._close(
            hold, charged, usage, status, "settled", hold_actor(hold), miner_hotkey, latency_ms
        )

    async def release(
        self,
        hold: Hold,
        *,
        reason: str,
        status: str = "error",
        usage: Usage | None = None,
        miner_hotkey: str | None = None,
        latency_ms: int | None = None,
    ) -> Settlement:
        return await self._close(
            hold,
            0,
            usage or Usage(),
            status,
            "released",
            hold_actor(hold),
            miner_hotkey,
            latency_ms,
            reason=reason,
        )

    async def _close(
        self,
        hold: Hold,
        charged: int,
        usage: Usage,
        status: str,
        closed_status: str,
        actor: str,
        miner_hotkey: str | None,
        latency_ms: int | None,
        *,
        reason: str = "",
    ) -> Settlement:
        now = self._clock()
        if self._lanes is not None and hold.spend_day is None and hold.spend_month is None:
            ask = CloseAsk(
                hold,
                charged,
                usage,
                status,
                closed_status,
                miner_hotkey,
                latency_ms,
                actor,
                reason or "hold closed",
            )
            balance = await self._lanes.close(ask)
            if balance is None:
                async with self._db.read() as session:
                    return await self._replay(session, hold)
            return Settlement(hold.id, charged, balance, status)
        async with self._db.transaction() as session:
            closed = await session.execute(
                update(HoldRow)
                .where(HoldRow.id == hold.id, HoldRow.status == "open")
                .values(status=closed_status, cost=charged, closed_at=now)
            )
            if rowcount(closed) == 0:
                return await self._replay(session, hold)
            balance = await ledger.apply(session, hold.account_id, hold.amount - charged)
            entries = [
                ledger.Entry(
                    "release",
                    hold.amount,
                    actor,
                    reason or "hold closed",
                    hold.id,
                    hold.key_id,
                    hold.request_id,
                )
            ]
            if closed_status == "settled":
                entries.append(
                    ledger.Entry(
                        "settle",
                        -charged,
                        actor,
                        f"{hold.task}: {status}",
                        hold.id,
                        hold.key_id,
                        hold.request_id,
                    )
                )
            await ledger.append(session, hold.account_id, balance, entries)
            await record_usage(
                session,
                self._db.dialect,
                hold,
                charged,
                usage,
                status,
                miner_hotkey,
                latency_ms,
                now,
            )
        return Settlement(hold.id, charged, balance, status)

    async def _replay(self, session: AsyncSession, hold: Hold) -> Settlement:
        """The hold was closed before (a retry, or the sweeper got there first)."""
        row = await session.get(HoldRow, hold.id)
        if row is None:
            raise LookupError(f"hold {hold.id} does not exist")
        balance = (
            await session.execute(select(Account.balance).where(Account.id == hold.account_id))
        ).scalar_one()
        status = (
            await session.execute(select(UsageRecord.status).where(UsageRecord.hold_id == hold.id))
        ).scalar_one_or_none()
        if row.status == "expired":
            log.warning("hold %s was swept before its settle; nothing charged", hold.id)
        return Settlement(hold.id, row.cost or 0, int(balance), status or row.status, replayed=True)

    # -- sweeper ---------------------------------------------------------------------------

    async def sweep_expired_holds(self, *, now: datetime | None = None, limit: int = 500) -> int:
        """Release open holds past their expiry (left by a crashed gateway); how many."""
        now = now or self._clock()
        async with self._db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(HoldRow)
                        .where(HoldRow.status == "open", HoldRow.expires_at < now)
                        .order_by(HoldRow.expires_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            holds = [hold_from_row(row) for row in rows]
        released = 0
        for hold in holds:
            settlement = await self._close(
                hold,
                0,
                Usage(),
                "expired",
                "expired",
                "sweeper",
                None,
                None,
                reason="hold expired (released by the sweeper)",
            )
            released += 0 if settlement.replayed else 1
        self.holds_expired += released
        if released:
            log.warning("released %d expired hold(s)", released)
        return released


def _refuse(account: tuple[str, int] | None, amount: int) -> None:
    """The error for a hold that did not fit: the account's (status, balance) say which."""
    if account is not None and account[0] != "active":
        raise AccountSuspended
    available = account[1] if account is not None else 0
    raise InsufficientCredits(
        f"Insufficient credits: this request may cost up to {format_credits(amount)} "
        f"credits and the account's available balance is {format_credits(available)}. "
        "Top up or lower max_tokens."
    )
