"""What customers do in the dashboard: keys (secret shown once), usage by day and model,
per-request records, the ledger, Stripe top-ups, prices and the quick-start."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from litestar import Litestar

from billing import Billing
from billing.money import MICRO
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import UsageRecord
from core.settings import BillingSettings
from protocol.catalog import Catalog
from tests.integration.web.conftest import Clients, Users, signed_in
from tests.integration.web.test_web_operator import secret_of
from tests.support.dashboard import FormClient, build_app, key_works, spend, web_settings
from tests.support.stripe_stub import StripeStub, event, payload_of, sign
from web import UserService

WEBHOOK_SECRET = "whsec_test_" + "d" * 24


async def _customer(
    billing: Billing, users: Users, clients: Clients, credits: int = 0
) -> tuple[int, FormClient]:
    account = await billing.accounts.create("customer co", email="co@example.com")
    if credits:
        await billing.accounts.grant(account.id, credits, actor="test", reason="start")
    client = await signed_in(clients, await users("customer", account_id=account.id))
    return account.id, client


async def test_empty_states_say_what_to_do(
    billing: Billing, users: Users, clients: Clients
) -> None:
    _, client = await _customer(billing, users, clients)
    overview = await client.get("/dashboard/overview")
    assert (
        "You have no active API key" in overview.text and "Your balance is empty" in overview.text
    )
    assert "No data in this period" in overview.text
    assert "No API keys yet" in (await client.get("/dashboard/keys")).text
    assert "No requests in the last 30 days" in (await client.get("/dashboard/usage")).text
    assert "No requests yet" in (await client.get("/dashboard/usage/requests")).text
    assert "Card top-ups are not enabled" in (await client.get("/dashboard/billing")).text
    missing = await client.get("/dashboard/no-such-page")
    assert (
        missing.status_code == 404
        and "Page not found" in missing.text
        and "/dashboard/" in missing.text
    )


async def test_keys_and_rotation(billing: Billing, users: Users, clients: Clients) -> None:
    account_id, client = await _customer(billing, users, clients)
    created = await client.post_once(
        "/dashboard/keys", {"name": "laptop", "rpm": "1", "tpm": "1", "monthly_cap": "3"}
    )
    assert created.status_code == 200 and "shown only once" in created.text
    secret = secret_of(created.text)
    [key] = await billing.keys.list_keys(account_id)
    # Customers cannot set the validator's rate limits: the defaults stay.
    assert key.rpm_limit == BillingSettings().default_rpm and key.monthly_spend_cap == 3 * MICRO
    listing = await client.get("/dashboard/keys")
    assert secret not in listing.text and key.display in listing.text
    rotated = await client.post_once(f"/dashboard/keys/{key.id}/rotate")
    new_secret = secret_of(rotated.text)
    assert "The previous secret of this key has stopped working" in rotated.text
    assert not await key_works(billing, secret) and await key_works(billing, new_secret)
    assert (await client.post_form(f"/dashboard/keys/{key.id}/revoke")).status_code == 303
    assert not await key_works(billing, new_secret)
    assert "revoked" in (await client.get(f"/dashboard/keys/{key.id}")).text


async def test_usage_and_balance_after_requests(
    billing: Billing, users: Users, clients: Clients, dev_catalog: Catalog
) -> None:
    account_id, client = await _customer(billing, users, clients, credits=5 * MICRO)
    secret = (await billing.keys.create(account_id, "k")).secret
    costs = [
        await spend(billing, dev_catalog, secret, input_tokens=100, output_tokens=50)
        for _ in range(3)
    ]
    costs.append(await spend(billing, dev_catalog, secret, status="upstream_error"))
    usage = await client.get("/dashboard/usage")
    assert re.search(r'id="requests">4<', usage.text), usage.text
    assert "sn19-tiny-chat" in usage.text and "<svg" in usage.text
    balance = await billing.accounts.balance(account_id)
    assert balance.available == 5 * MICRO - sum(costs)
    page = await client.get("/dashboard/billing")
    assert page.text.count('<tr class="line-request">') == 4 and "hold" not in page.text
    requests = await client.get("/dashboard/usage/requests")
    assert (
        requests.text.count('<code class="small">req-') == 4 and "upstream_error" in requests.text
    )


async def test_keyset_pages(db: Database, billing: Billing, users: Users, clients: Clients) -> None:
    account_id, client = await _customer(billing, users, clients)
    key = (await billing.keys.create(account_id, "bulk")).key
    now = utcnow()
    async with db.transaction() as session:
        session.add_all(
            UsageRecord(
                account_id=account_id,
                key_id=key.id,
                request_id=f"bulk-{i:04d}",
                task="sn19-tiny-chat",
                kind="chat",
                status="ok",
                created_at=now - timedelta(seconds=i),
            )
            for i in range(120)
        )
    seen: list[str] = []
    url = "/dashboard/usage/requests"
    for _ in range(5):
        page = await client.get(url)
        seen += re.findall(r"<code class=\"small\">(bulk-\d{4})<", page.text)
        older = re.search(r'href="(/dashboard/usage/requests\?before=\d+)"', page.text)
        if older is None:
            break
        url = older.group(1)
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen == sorted(seen, reverse=True)  # newest (highest id) first


async def test_prices_and_quick_start(billing: Billing, users: Users, clients: Clients) -> None:
    _, client = await _customer(billing, users, clients)
    docs = await client.get("/dashboard/docs")
    assert 'base_url="http://testserver/v1"' in docs.text and "sn19-tiny-chat" in docs.text
    assert "curl http://testserver/v1/chat/completions" in docs.text


@pytest.fixture
async def stub() -> AsyncIterator[StripeStub]:
    server = StripeStub()
    await server.start()
    yield server
    await server.stop()


async def test_stripe_top_up(
    db: Database, dev_catalog: Catalog, users: Users, stub: StripeStub
) -> None:
    settings = web_settings(
        billing={
            "stripe_api_key": "sk_test_dashboard",
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": stub.url,
        },
        gateway={"public_url": "https://validator.example"},
    )
    billing = Billing.create(settings, dev_catalog, db, None)
    app: Litestar = build_app(settings, db, billing, dev_catalog)
    account = await billing.accounts.create("payer", email="payer@example.com")
    client = FormClient(app)
    try:
        await client.login((await users("customer", account_id=account.id)).email)
        out_of_range = await client.post_form("/dashboard/billing/checkout", {"credits": "1"})
        assert out_of_range.status_code == 400 and "between 5 and 10,000" in out_of_range.text
        started = await client.post_form("/dashboard/billing/checkout", {"credits": "12"})
        assert started.status_code == 303
        assert started.headers["location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
        [sent] = stub.requests
        assert sent["success_url"] == "https://validator.example/dashboard/billing?checkout=success"
        assert sent["metadata[account_id]"] == str(account.id)
        session_id = started.headers["location"].rsplit("/", 1)[1]
        paid = event(
            "checkout.session.completed",
            {
                "id": session_id,
                "object": "checkout.session",
                "amount_total": 1200,
                "currency": "usd",
                "payment_status": "paid",
                "payment_intent": f"pi_{session_id}",
                "client_reference_id": str(account.id),
                "metadata": {"account_id": str(account.id), "credits": str(12 * MICRO)},
            },
        )
        payload = payload_of(paid)
        forged = await client.http.post(
            "/v1/billing/stripe/webhook",
            content=payload,
            headers={"stripe-signature": sign(payload, "whsec_wrong")},
        )
        assert forged.status_code == 400
        delivered = await client.http.post(
            "/v1/billing/stripe/webhook",
            content=payload,
            headers={"stripe-signature": sign(payload, WEBHOOK_SECRET)},
        )
        assert delivered.status_code == 200
        back = await client.get("/dashboard/billing?checkout=success")
        assert "Payment received" in back.text
        assert re.search(r'id="balance">12\.000000<', back.text), back.text
        assert "topup" in back.text
    finally:
        await client.aclose()


async def test_key_creation_is_post_redirect_get_with_a_one_time_view(
    billing: Billing, users: Users, clients: Clients
) -> None:
    account_id, client = await _customer(billing, users, clients)
    posted = await client.post_form("/dashboard/keys", {"name": "once"})
    assert posted.status_code == 303
    view = posted.headers["location"]
    assert view.startswith("/dashboard/once/")
    # The pad travels in a cookie for that one path; the database holds no usable secret.
    assert f"Path={view}" in posted.headers["set-cookie"]
    shown = await client.get(view)
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    secret = secret_of(shown.text)
    assert await key_works(billing, secret)
    # Reloading (or going back) creates nothing and shows nothing.
    again = await client.get(view)
    assert again.status_code == 410 and secret not in again.text
    assert len(await billing.keys.list_keys(account_id)) == 1
    # Another browser of the same user cannot open someone else's view.
    other = await signed_in(clients, (await UserService(billing.db).of_account(account_id))[0])
    posted = await client.post_form("/dashboard/keys", {"name": "twice"})
    stolen = await other.get(posted.headers["location"])
    assert stolen.status_code == 410 and "sk-sn19-" not in stolen.text


async def test_the_statement_reads_one_line_per_request_with_filters_and_csv(
    billing: Billing, users: Users, clients: Clients, dev_catalog: Catalog
) -> None:
    account_id, client = await _customer(billing, users, clients, credits=50 * MICRO)
    secret = (await billing.keys.create(account_id, "production")).secret
    other = (await billing.keys.create(account_id, "=cmd|' /C calc'!A0")).secret
    costs = [await spend(billing, dev_catalog, secret) for _ in range(3)]
    costs.append(await spend(billing, dev_catalog, other))
    page = await client.get("/dashboard/billing")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="line-(\w+)">', page.text)
    assert rows == ["request"] * 4 + ["grant"]  # not hold, release and settle per request
    assert "production" in page.text and "key:" not in page.text
    # One number format: six decimals, in every amount cell.
    amounts = re.findall(r'<td class="num amount[^"]*">([^<]+)<', page.text)
    assert all(re.fullmatch(r"-?[\d,]+\.\d{6}", a) for a in amounts), amounts
    keys = await billing.keys.list_keys(account_id)
    production = next(k for k in keys if k.name == "production")
    filtered = await client.get(f"/dashboard/billing?key={production.id}")
    assert re.findall(r'<tr class="line-(\w+)">', filtered.text) == ["request"] * 3
    grants = await client.get("/dashboard/billing?kind=grant")
    assert re.findall(r'<tr class="line-(\w+)">', grants.text) == ["grant"]
    exported = await client.get(f"/dashboard/billing/statement.csv?key={production.id}")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    lines = exported.text.strip().split("\r\n")
    assert lines[0].startswith("time_utc,kind,amount_credits,balance_after_credits,key,model")
    assert len(lines) == 4 and all(",request," in line for line in lines[1:])
    assert sorted(line.split(",")[2] for line in lines[1:]) == sorted(
        f"-0.{c:06d}" for c in costs[:3]
    )
    everything = (await client.get("/dashboard/billing/statement.csv")).text
    assert "'=cmd" in everything  # a key name never starts a spreadsheet formula


async def test_a_request_page_shows_the_miner_the_receipt_and_the_check(
    billing: Billing, users: Users, clients: Clients, dev_catalog: Catalog
) -> None:
    account_id, client = await _customer(billing, users, clients, credits=5 * MICRO)
    secret = (await billing.keys.create(account_id, "production")).secret
    await spend(billing, dev_catalog, secret)
    [record] = await billing.usage.requests(account_id, limit=1)
    assert record.miner_hotkey
    listing = await client.get("/dashboard/usage/requests")
    assert f"/dashboard/usage/requests/{record.request_id}" in listing.text
    page = await client.get(f"/dashboard/usage/requests/{record.request_id}")
    assert page.status_code == 200 and record.miner_hotkey in page.text
    assert "not stored yet" in page.text and "not checked" in page.text
    stored = json.dumps(
        {
            "status": "valid",
            "miner": record.miner_hotkey,
            "validator": "5Validator",
            "nonce": "17",
            "sha256": "a" * 64,
            "signature": "0x" + "b" * 128,
        }
    )
    await billing.usage.receipts.record(
        request_id=record.request_id,
        task=record.task,
        kind="chat",
        miner_hotkey=record.miner_hotkey,
        miner_uid=7,
        outcome="ok",
        receipt=stored,
        receipt_status="valid",
        ttft_s=0.1,
        total_s=0.2,
        attempts=1,
    )
    page = await client.get(f"/dashboard/usage/requests/{record.request_id}")
    assert "uid 7" in page.text and "sn19 receipts verify receipt.json" in page.text
    assert "&#34;sn19-receipt/1&#34;" in page.text or '"sn19-receipt/1"' in page.text
    # Another customer: no such request.
    other = await billing.accounts.create("other co")
    stranger = await signed_in(clients, await users("customer", account_id=other.id))
    hidden = await stranger.get(f"/dashboard/usage/requests/{record.request_id}")
    assert hidden.status_code == 404 and record.miner_hotkey not in hidden.text
