"""What a closed hold writes besides the ledger: the request's usage record, the daily
aggregate (incremented in place), and the spend-cap counters given back the unused part."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.costs import Usage
from billing.holds import Hold
from core.db.dialect import upsert_increment
from core.db.tables.billing import KeySpend, UsageDaily, UsageRecord

# Core insert: the hot path skips the ORM unit of work.
USAGE: Table = UsageRecord.__table__  # type: ignore[assignment]


async def record_usage(
    session: AsyncSession,
    dialect: str,
    hold: Hold,
    charged: int,
    usage: Usage,
    status: str,
    miner_hotkey: str | None,
    latency_ms: int | None,
    now: datetime,
) -> None:
    """The usage record of a closed hold, its daily aggregate, and the spend-cap counters
    given back what was held but not charged; in the caller's transaction."""
    released = hold.amount - charged
    for period in (hold.spend_day, hold.spend_month):
        if period is not None and released:
            await session.execute(
                update(KeySpend)
                .where(KeySpend.key_id == hold.key_id, KeySpend.period == period)
                .values(amount=KeySpend.amount - released)
            )
    await session.execute(
        insert(USAGE).values(
            hold_id=hold.id,
            account_id=hold.account_id,
            key_id=hold.key_id,
            request_id=hold.request_id[:128],
            task=hold.task,
            kind=hold.kind,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            images=usage.images,
            steps=usage.steps,
            cost=charged,
            miner_hotkey=miner_hotkey[:64] if miner_hotkey else None,
            latency_ms=latency_ms,
            status=status[:32],
            created_at=now,
        )
    )
    daily = {
        "day": now.date(),
        "account_id": hold.account_id,
        "key_id": hold.key_id,
        "task": hold.task,
        "requests": 1,
        "errors": 0 if status == "ok" else 1,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "images": usage.images,
        "steps": usage.steps,
        "cost": charged,
    }
    counters = [name for name in daily if name not in ("day", "account_id", "key_id", "task")]
    await session.execute(
        upsert_increment(
            dialect,
            UsageDaily,
            daily,
            ["day", "account_id", "key_id", "task"],
            counters,
        )
    )
    await session.flush()
