"""Stripe top-ups with the real ``stripe`` library: Checkout against a local stand-in of the API,
webhooks signed exactly as Stripe signs them; credited exactly once, refunds debit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from billing import Billing, BillingUnavailable, PaymentsNotEnabled, WebhookRejected
from billing.money import MICRO
from billing.schemas import CheckoutRequest
from core.db.engine import Database
from core.db.tables.billing import StripeEvent
from core.errors import InvalidRequest
from protocol.catalog import Catalog
from tests.integration.billing.conftest import make_settings
from tests.support.stripe_stub import StripeStub, event, payload_of, sign

SECRET = "whsec_test_" + "s" * 24


@pytest.fixture
async def stub() -> AsyncIterator[StripeStub]:
    server = StripeStub()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def stripe_billing(stub: StripeStub, db: Database, dev_catalog: Catalog) -> Billing:
    settings = make_settings(
        stripe_api_key="sk_test_dummy",
        stripe_webhook_secret=SECRET,
        stripe_api_base=stub.url,
        checkout_success_url="https://validator.example/dashboard/billing?paid=1",
    )
    return Billing.create(settings, dev_catalog, db, None)


def _paid_session(
    account_id: int, credits: int, *, session_id: str, amount: int, intent: str
) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount,
        "currency": "usd",
        "payment_status": "paid",
        "payment_intent": intent,
        "client_reference_id": str(account_id),
        "metadata": {"account_id": str(account_id), "credits": str(credits)},
    }


async def _deliver(
    billing: Billing, evt: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None
) -> Any:
    payload = payload_of(evt)
    return await billing.api.stripe_webhook(payload, sign(payload, secret, timestamp=timestamp))


async def _balance(billing: Billing, account_id: int) -> int:
    return (await billing.accounts.balance(account_id)).available


async def test_checkout_creates_a_session_through_the_real_library(
    stripe_billing: Billing, stub: StripeStub
) -> None:
    account = await stripe_billing.accounts.create("buyer", email="buyer@example.com")
    response = await stripe_billing.api.checkout(account.id, CheckoutRequest(credits=25))
    assert response.id.startswith("cs_test_") and response.url.endswith(response.id)
    assert (response.credits, response.amount, response.currency) == (25, 2500, "usd")
    [sent] = stub.requests
    assert sent["mode"] == "payment"
    assert sent["line_items[0][quantity]"] == "25"
    assert sent["line_items[0][price_data][unit_amount]"] == "100"
    assert sent["line_items[0][price_data][currency]"] == "usd"
    assert sent["metadata[account_id]"] == str(account.id)
    assert sent["metadata[credits]"] == str(25 * MICRO)
    assert sent["payment_intent_data[metadata][credits]"] == str(25 * MICRO)
    assert sent["success_url"] == "https://validator.example/dashboard/billing?paid=1"
    assert sent["cancel_url"].endswith("/dashboard/billing?checkout=cancel")
    assert sent["customer_email"] == "buyer@example.com"
    assert stub.headers[0]["Authorization"] == "Bearer sk_test_dummy"


async def test_checkout_validation_and_failures(stripe_billing: Billing, stub: StripeStub) -> None:
    account = await stripe_billing.accounts.create("buyer2")
    with pytest.raises(InvalidRequest) as info:
        await stripe_billing.api.checkout(account.id, CheckoutRequest(credits=1))
    assert info.value.param == "credits"
    stub.fail_with = 400
    with pytest.raises(BillingUnavailable):
        await stripe_billing.api.checkout(account.id, CheckoutRequest(credits=10))


async def test_webhook_credits_once(stripe_billing: Billing) -> None:
    account = await stripe_billing.accounts.create("payer")
    evt = event(
        "checkout.session.completed",
        _paid_session(
            account.id,
            10 * MICRO,
            session_id=f"cs_{account.id}_a",
            amount=1000,
            intent=f"pi_{account.id}_a",
        ),
    )
    first = await _deliver(stripe_billing, evt)
    assert (first.status, first.event_id) == ("processed", evt["id"])
    assert await _balance(stripe_billing, account.id) == 10 * MICRO
    again = await _deliver(stripe_billing, evt)  # Stripe redelivers
    assert again.status == "duplicate"
    # The same session paid through a second event type: still credited once.
    async_evt = event("checkout.session.async_payment_succeeded", evt["data"]["object"])
    assert (await _deliver(stripe_billing, async_evt)).status == "processed"  # no effect
    assert await _balance(stripe_billing, account.id) == 10 * MICRO
    entries = await stripe_billing.accounts.ledger_entries(account.id)
    assert [(e.kind, e.amount, e.actor, e.reference) for e in entries] == [
        ("topup", 10 * MICRO, "stripe", evt["id"])
    ]
    assert (await stripe_billing.accounts.verify([account.id])).ok


async def test_concurrent_redeliveries_credit_once(
    stripe_billing: Billing, db_url: str, dev_catalog: Catalog
) -> None:
    account = await stripe_billing.accounts.create("racer")
    evt = event(
        "checkout.session.completed",
        _paid_session(
            account.id,
            5 * MICRO,
            session_id=f"cs_{account.id}_r",
            amount=500,
            intent=f"pi_{account.id}_r",
        ),
    )
    # Several "gateway replicas", each with its own engine and connections.
    replicas = []
    for _ in range(4):
        database = Database.from_url(db_url)
        settings = make_settings(stripe_api_key="sk_test_dummy", stripe_webhook_secret=SECRET)
        replicas.append(Billing.create(settings, dev_catalog, database, None))
    try:
        results = await asyncio.gather(*(_deliver(replicas[i % 4], evt) for i in range(12)))
    finally:
        for replica in replicas:
            await replica.db.dispose()
    assert sorted(r.status for r in results).count("processed") == 1
    assert {r.status for r in results} == {"processed", "duplicate"}
    assert await _balance(stripe_billing, account.id) == 5 * MICRO
    assert (await stripe_billing.accounts.verify([account.id])).ok


async def test_bad_signature_wrong_secret_stale_timestamp_are_400(stripe_billing: Billing) -> None:
    account = await stripe_billing.accounts.create("victim")
    evt = event(
        "checkout.session.completed",
        _paid_session(
            account.id,
            MICRO,
            session_id=f"cs_{account.id}_b",
            amount=100,
            intent=f"pi_{account.id}_b",
        ),
    )
    payload = payload_of(evt)
    header = sign(payload, SECRET)
    tampered = payload.replace(b'"credits":"1000000"', b'"credits":"9000000"')
    cases = [
        (tampered, header),  # body changed after signing
        (payload, sign(payload, "whsec_wrong")),  # someone else's secret
        (payload, sign(payload, SECRET, timestamp=int(time.time()) - 1000)),  # replayed later
        (payload, None),  # no header
        (payload, "garbage"),
    ]
    for body, signature in cases:
        with pytest.raises(WebhookRejected) as info:
            await stripe_billing.api.stripe_webhook(body, signature)
        assert info.value.status_code == 400
    assert await _balance(stripe_billing, account.id) == 0
    async with stripe_billing.db.read() as session:
        assert (
            await session.execute(select(StripeEvent).where(StripeEvent.id == evt["id"]))
        ).first() is None


async def test_unpaid_and_unknown_events_are_stored_not_applied(stripe_billing: Billing) -> None:
    account = await stripe_billing.accounts.create("pending")
    obj = _paid_session(
        account.id, MICRO, session_id=f"cs_{account.id}_u", amount=100, intent=f"pi_{account.id}_u"
    )
    obj["payment_status"] = "unpaid"
    assert (
        await _deliver(stripe_billing, event("checkout.session.completed", obj))
    ).status == "ignored"
    assert (
        await _deliver(stripe_billing, event("customer.created", {"id": "cus_1"}))
    ).status == "ignored"
    bad = _paid_session(10**9, MICRO, session_id="cs_nobody", amount=100, intent="pi_nobody")
    result = await _deliver(stripe_billing, event("checkout.session.completed", bad))
    assert result.status == "ignored"
    assert await _balance(stripe_billing, account.id) == 0
    # The paid event arrives later: now it credits.
    obj["payment_status"] = "paid"
    assert (
        await _deliver(stripe_billing, event("checkout.session.async_payment_succeeded", obj))
    ).status == "processed"
    assert await _balance(stripe_billing, account.id) == MICRO


async def test_refunds_debit_proportionally_once(stripe_billing: Billing) -> None:
    account = await stripe_billing.accounts.create("refunded")
    intent = f"pi_{account.id}_ref"
    paid = event(
        "checkout.session.completed",
        _paid_session(
            account.id, 20 * MICRO, session_id=f"cs_{account.id}_ref", amount=2000, intent=intent
        ),
    )
    await _deliver(stripe_billing, paid)
    # A partial refund of 25%, told twice (refund.created, then charge.refunded).
    refund = event(
        "refund.created",
        {
            "id": f"re_{account.id}_1",
            "object": "refund",
            "amount": 500,
            "payment_intent": intent,
            "status": "succeeded",
        },
    )
    assert (await _deliver(stripe_billing, refund)).status == "processed"
    assert await _balance(stripe_billing, account.id) == 15 * MICRO
    charge = {
        "id": f"ch_{account.id}",
        "object": "charge",
        "amount": 2000,
        "amount_refunded": 500,
        "payment_intent": intent,
    }
    assert (await _deliver(stripe_billing, event("charge.refunded", charge))).status == "processed"
    assert await _balance(stripe_billing, account.id) == 15 * MICRO
    # The rest is refunded: charge.refunded first this time, then its refund.created.
    charge["amount_refunded"] = 2000
    await _deliver(stripe_billing, event("charge.refunded", charge))
    assert await _balance(stripe_billing, account.id) == 0
    refund2 = event(
        "refund.created",
        {
            "id": f"re_{account.id}_2",
            "object": "refund",
            "amount": 1500,
            "payment_intent": intent,
            "status": "succeeded",
        },
    )
    await _deliver(stripe_billing, refund2)
    assert await _balance(stripe_billing, account.id) == 0
    kinds = [(e.kind, e.amount) for e in await stripe_billing.accounts.ledger_entries(account.id)]
    assert kinds == [("refund", -15 * MICRO), ("refund", -5 * MICRO), ("topup", 20 * MICRO)]
    assert (await stripe_billing.accounts.verify([account.id])).ok


async def test_refund_after_spending_leaves_a_debt_that_blocks_holds(
    stripe_billing: Billing,
) -> None:
    from billing import InsufficientCredits, estimate_chat

    account = await stripe_billing.accounts.create("spender")
    intent = f"pi_{account.id}_debt"
    await _deliver(
        stripe_billing,
        event(
            "checkout.session.completed",
            _paid_session(
                account.id, 10 * MICRO, session_id=f"cs_{account.id}_d", amount=1000, intent=intent
            ),
        ),
    )
    await stripe_billing.accounts.grant(
        account.id, -6 * MICRO, actor="t", reason="spent", kind="adjustment"
    )
    charge = {
        "id": "ch_d",
        "object": "charge",
        "amount": 1000,
        "amount_refunded": 1000,
        "payment_intent": intent,
    }
    await _deliver(stripe_billing, event("charge.refunded", charge))
    assert await _balance(stripe_billing, account.id) == -6 * MICRO
    key = await stripe_billing.keys.create(account.id, "k")
    ctx = await stripe_billing.authenticator.authenticate(key.secret)
    task = stripe_billing.prices._catalog.get("sn19-tiny-chat")  # noqa: SLF001
    assert task is not None
    with pytest.raises(InsufficientCredits):
        await stripe_billing.service.hold(ctx, task, estimate_chat(0, 0), request_id="debt")


async def test_stripe_not_configured_is_a_permanent_404(billing: Billing) -> None:
    account = await billing.accounts.create("no-stripe")
    with pytest.raises(PaymentsNotEnabled) as info:
        await billing.api.checkout(account.id, CheckoutRequest(credits=10))
    assert info.value.status_code == 404 and info.value.code == "payments_not_enabled"
    with pytest.raises(PaymentsNotEnabled):
        await billing.api.stripe_webhook(b"{}", "t=1,v1=00")
