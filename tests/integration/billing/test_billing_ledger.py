"""Hold → settle | release | sweep on both backends: amounts, idempotency, usage records, daily
aggregates, spend caps, and the ledger invariants after each step."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import func, select, text

from billing import (
    AccountSuspended,
    Billing,
    InsufficientCredits,
    SpendCapExceeded,
    Usage,
    estimate_chat,
    estimate_embedding,
    estimate_image,
)
from billing.money import MICRO
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Hold as HoldRow
from core.db.tables.billing import LedgerEntry, UsageDaily, UsageRecord
from protocol.catalog import Task
from tests.integration.billing.conftest import Funded


async def _verified(billing: Billing, account_id: int) -> None:
    report = await billing.accounts.verify([account_id])
    assert report.ok, report


async def _usage_rows(db: Database, hold_id: int) -> list[UsageRecord]:
    async with db.read() as session:
        return list(
            (
                await session.execute(select(UsageRecord).where(UsageRecord.hold_id == hold_id))
            ).scalars()
        )


async def test_hold_then_settle_charges_delivered_usage(
    billing: Billing, db: Database, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(1 * MICRO)
    # dev prices: 0.1 credit / 1M input, 0.2 credit / 1M output (micro: 100_000, 200_000)
    hold = await billing.service.hold(ctx, chat_task, estimate_chat(1000, 500, 2), request_id="r-1")
    assert hold.amount == (2000 * 100_000 + 1000 * 200_000) // 1_000_000 == 400
    assert hold.balance == MICRO - 400
    balance = await billing.accounts.balance(ctx.account_id)
    assert (balance.available, balance.held) == (MICRO - 400, 400)
    await _verified(billing, ctx.account_id)

    settlement = await billing.service.settle(
        hold, Usage(input_tokens=1000, output_tokens=333), miner_hotkey="5Hk", latency_ms=42
    )
    expected = -(-(1000 * 100_000 + 333 * 200_000) // 1_000_000)  # ceil
    assert settlement.cost == expected == 167
    assert settlement.balance == MICRO - 167
    assert settlement.headers() == {"x-sn19-cost": "0.000167", "x-sn19-balance": "0.999833"}
    assert (await billing.accounts.balance(ctx.account_id)).held == 0
    await _verified(billing, ctx.account_id)

    records = await _usage_rows(db, hold.id)
    assert len(records) == 1
    record = records[0]
    assert (record.cost, record.input_tokens, record.output_tokens) == (167, 1000, 333)
    assert (record.miner_hotkey, record.latency_ms, record.status) == ("5Hk", 42, "ok")
    assert record.request_id == "r-1" and record.key_id == ctx.key_id

    async with db.read() as session:
        kinds = [
            (e.kind, e.amount)
            for e in (
                await session.execute(
                    select(LedgerEntry)
                    .where(LedgerEntry.hold_id == hold.id)
                    .order_by(LedgerEntry.id)
                )
            ).scalars()
        ]
    assert kinds == [("hold", -400), ("release", 400), ("settle", -167)]


async def test_settle_is_idempotent_and_capped_at_the_hold(
    billing: Billing, db: Database, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(MICRO)
    hold = await billing.service.hold(ctx, chat_task, estimate_chat(10, 10), request_id="r-2")
    first = await billing.service.settle(hold, Usage(input_tokens=10**6, output_tokens=10**6))
    assert first.cost == hold.amount  # never more than was held
    again = await billing.service.settle(hold, Usage(input_tokens=1))
    assert again.replayed and again.cost == first.cost and again.balance == first.balance
    released = await billing.service.release(hold, reason="late")
    assert released.replayed and released.cost == first.cost
    assert len(await _usage_rows(db, hold.id)) == 1
    await _verified(billing, ctx.account_id)


async def test_release_charges_nothing_but_records_usage(
    billing: Billing, db: Database, funded: Funded, image_task: Task
) -> None:
    ctx, _ = await funded(MICRO)
    hold = await billing.service.hold(ctx, image_task, estimate_image(2, 10), request_id="img")
    assert hold.amount == 2 * 10 * 1000
    settlement = await billing.service.release(hold, reason="no miner", status="no_capacity")
    assert settlement.cost == 0 and settlement.balance == MICRO
    [record] = await _usage_rows(db, hold.id)
    assert (record.status, record.cost) == ("no_capacity", 0)
    await _verified(billing, ctx.account_id)


async def test_embedding_and_image_costs(
    billing: Billing, funded: Funded, embedding_task: Task, image_task: Task
) -> None:
    ctx, _ = await funded(MICRO)
    hold = await billing.service.hold(ctx, embedding_task, estimate_embedding(123), request_id="e")
    assert hold.amount == 3  # ceil(123 * 20_000 / 1e6) = ceil(2.46)
    done = await billing.service.settle(hold, Usage(input_tokens=100))
    assert done.cost == 2
    hold = await billing.service.hold(ctx, image_task, estimate_image(1, 30), request_id="i")
    done = await billing.service.settle(hold, Usage(images=1, steps=20))
    assert done.cost == 20 * 1000
    await _verified(billing, ctx.account_id)


async def test_insufficient_credits_is_402_without_retry(
    billing: Billing, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(100)
    with pytest.raises(InsufficientCredits) as info:
        await billing.service.hold(ctx, chat_task, estimate_chat(1000, 1000), request_id="x")
    assert info.value.status_code == 402
    assert info.value.code == "insufficient_quota"
    assert info.value.headers["x-should-retry"] == "false"
    # Nothing was written.
    assert (await billing.accounts.balance(ctx.account_id)).available == 100
    assert (await billing.accounts.ledger_entries(ctx.account_id))[0].kind == "grant"
    await _verified(billing, ctx.account_id)


async def test_suspended_account_cannot_hold(
    billing: Billing, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(MICRO)
    await billing.accounts.set_status(ctx.account_id, "suspended")
    with pytest.raises(AccountSuspended):
        await billing.service.hold(ctx, chat_task, estimate_chat(1, 1), request_id="s")


async def test_daily_and_monthly_spend_caps(
    billing: Billing, funded: Funded, chat_task: Task
) -> None:
    # Each hold of estimate_chat(0, 5000) costs 1000 micro; the daily cap fits three.
    ctx, _ = await funded(MICRO, daily_spend_cap=3000, monthly_spend_cap=5000)
    holds = [
        await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id=f"c{i}")
        for i in range(3)
    ]
    with pytest.raises(SpendCapExceeded) as info:
        await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="c3")
    assert info.value.status_code == 402 and info.value.code == "spend_cap_exceeded"
    assert info.value.headers["x-should-retry"] == "false"
    # Settling for less frees the unused part of the cap.
    await billing.service.settle(holds[0], Usage(output_tokens=2500))  # cost 500
    await billing.service.release(holds[1], reason="failed")  # cost 0
    await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="c4")
    # Month: 500 + 1000 (open) + 1000 (open) = 2500 spent or held; 2 more fit, the third not.
    await billing.service.settle(holds[2], Usage(output_tokens=5000))
    key = await billing.keys.update(ctx.key_id, daily_spend_cap=None)
    assert key.daily_spend_cap is None
    ctx = msgspec.structs.replace(ctx, daily_spend_cap=None)
    await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="c5")
    await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="c6")
    with pytest.raises(SpendCapExceeded, match="monthly"):
        await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="c7")
    await _verified(billing, ctx.account_id)


async def test_cap_added_later_counts_what_was_spent(
    billing: Billing, funded: Funded, chat_task: Task
) -> None:
    ctx, secret = await funded(MICRO)
    hold = await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="a")
    await billing.service.settle(hold, Usage(output_tokens=5000))  # 1000 spent today
    await billing.keys.update(ctx.key_id, daily_spend_cap=1500)
    billing.authenticator.clear()
    ctx = await billing.authenticator.authenticate(secret)
    assert ctx.daily_spend_cap == 1500
    with pytest.raises(SpendCapExceeded):
        await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="b")
    await billing.service.hold(ctx, chat_task, estimate_chat(0, 2500), request_id="c")


async def test_sweeper_releases_expired_holds_only(
    billing: Billing, db: Database, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(MICRO)
    stale = await billing.service.hold(
        ctx, chat_task, estimate_chat(100, 100), request_id="stale", expires_in=-1
    )
    fresh = await billing.service.hold(ctx, chat_task, estimate_chat(100, 100), request_id="fresh")
    assert fresh.expires_at > utcnow() + timedelta(seconds=chat_task.timeouts.total_s)
    counted = billing.service.holds_expired
    released = await billing.service.sweep_expired_holds()
    assert released >= 1
    # What the SN19HoldsExpiringUnreleased alert reads (sn19_billing_holds_expired_total).
    assert billing.service.holds_expired == counted + released
    async with db.read() as session:
        statuses = dict(
            (
                await session.execute(
                    select(HoldRow.id, HoldRow.status).where(HoldRow.id.in_([stale.id, fresh.id]))
                )
            ).all()
        )
    assert statuses == {stale.id: "expired", fresh.id: "open"}
    [record] = await _usage_rows(db, stale.id)
    assert (record.status, record.cost) == ("expired", 0)
    # A settle arriving after the sweep charges nothing and changes nothing.
    late = await billing.service.settle(stale, Usage(input_tokens=100, output_tokens=100))
    assert late.replayed and late.cost == 0
    assert (await billing.accounts.balance(ctx.account_id)).available == MICRO - fresh.amount
    await _verified(billing, ctx.account_id)
    # Sweeping again finds nothing of ours.
    await billing.service.sweep_expired_holds()
    await _verified(billing, ctx.account_id)


async def test_daily_aggregate_is_incremental(
    billing: Billing, db: Database, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(MICRO)
    for i, status in enumerate(["ok", "ok", "client_disconnected"]):
        hold = await billing.service.hold(
            ctx, chat_task, estimate_chat(10, 100), request_id=f"d{i}"
        )
        await billing.service.settle(hold, Usage(input_tokens=10, output_tokens=50), status=status)
    hold = await billing.service.hold(ctx, chat_task, estimate_chat(10, 100), request_id="d3")
    await billing.service.release(hold, reason="boom")
    async with db.read() as session:
        row = (
            await session.execute(select(UsageDaily).where(UsageDaily.key_id == ctx.key_id))
        ).scalar_one()
        total = (
            await session.execute(
                select(func.sum(UsageRecord.cost)).where(UsageRecord.key_id == ctx.key_id)
            )
        ).scalar_one()
    assert (row.requests, row.errors) == (4, 2)
    assert (row.input_tokens, row.output_tokens) == (30, 150)
    assert row.cost == total == 3 * 11


async def test_verify_detects_a_tampered_balance(
    fresh_sqlite_url: str, dev_catalog: object
) -> None:
    from tests.integration.billing.conftest import make_settings

    database = Database.from_url(fresh_sqlite_url)
    try:
        billing = Billing.create(make_settings(), dev_catalog, database)  # type: ignore[arg-type]
        account = await billing.accounts.create("tampered")
        await billing.accounts.grant(account.id, 1000, actor="t", reason="r")
        assert (await billing.accounts.verify()).ok
        async with database.transaction() as session:
            await session.execute(text("UPDATE accounts SET balance = balance + 1"))
        report = await billing.accounts.verify()
        assert not report.ok
        assert report.mismatches == [(account.id, 1001, 1000)]
    finally:
        await database.dispose()
