"""End to end in a real Chromium: an operator signs in, creates an account and a key, grants
credits and invites the customer; the key works against the API; the customer signs in, sees
the usage and balance, rotates the key (the old one stops working) and tops up through Stripe
Checkout, completed by a signed webhook. Screenshots of the main pages go to
artifacts/screenshots/.

The API is the real gateway (``gateway.create_app`` with billing on, on the same database and
Redis, in front of in-memory miners) called with the official openai SDK; the Stripe webhook
goes to the gateway's ``/v1/billing/stripe/webhook``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from billing import Billing
from billing.money import MICRO
from core.db.engine import Database
from protocol.catalog import Catalog
from tests.integration.web.conftest import Users
from tests.support.browser import chromium, screenshot
from tests.support.dashboard import PASSWORD, build_app, seed_history, web_settings
from tests.support.dashboard_api import api_for, gateway_settings, wait_settled
from tests.support.net import free_port
from tests.support.serving import serve_app
from tests.support.stripe_stub import StripeStub, event, payload_of, sign

pytestmark = [pytest.mark.browser, pytest.mark.redis]

WEBHOOK_SECRET = "whsec_test_" + "b" * 24
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def stub() -> AsyncIterator[StripeStub]:
    server = StripeStub()
    await server.start()
    yield server
    await server.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> bool:
    """True as soon as ``check()`` is (key changes reach the gateway through Redis)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def credits_of(text: str) -> Decimal:
    return Decimal(text.strip().replace(",", ""))


async def _balance(page: Any) -> Decimal:
    return credits_of(await page.inner_text("#balance"))


async def test_operator_and_customer_end_to_end(
    db: Database,
    db_url: str,
    dev_catalog: Catalog,
    users: Users,
    stub: StripeStub,
    redis_client: Redis,
    redis_prefix: str,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = web_settings(
        redis_prefix,
        billing={
            "enabled": True,
            "stripe_api_key": "sk_test_browser",
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": stub.url,
            "price_cache_ttl_s": 0.0,
        },
        gateway={"public_url": base},
    )
    billing = Billing.create(settings, dev_catalog, db, redis_client)
    await billing.start()
    admin = await users("admin")
    customer_email = f"owner-{port}@example.com"
    app = build_app(settings, db, billing, dev_catalog, redis_client)
    try:
        async with (
            serve_app(app, port=port, server="uvicorn", health="/dashboard/login"),
            api_for(gateway_settings(settings, db_url), dev_catalog, redis_client) as api,
            chromium() as browser,
        ):
            operator = await (await browser.new_context(viewport=DESKTOP)).new_page()
            operator.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

            # The operator signs in (the sign-in form, then back to where they wanted to go).
            await operator.goto(f"{base}/dashboard/admin/accounts")
            assert "/dashboard/login?next=" in operator.url
            await screenshot(operator, "sign-in")
            await operator.fill("input[name=email]", admin.email)
            await operator.fill("input[name=password]", PASSWORD)
            await operator.click("button[type=submit]")
            await operator.wait_for_url(f"{base}/dashboard/admin/accounts")
            # The revenue other tests left on this database (the overview counts every account).
            await operator.goto(f"{base}/dashboard/admin")
            earlier = credits_of(await operator.inner_text("#revenue"))
            await operator.goto(f"{base}/dashboard/admin/accounts")

            # ... sets the price of the chat model,
            await operator.click("nav >> text=Prices")
            row = operator.locator('form.price-form:has(input[name=task][value="sn19-tiny-chat"])')
            await row.locator("input[name=input]").fill("200")
            await row.locator("input[name=output]").fill("600")
            await row.locator("button").click()
            await operator.wait_for_url(re.compile(r".*/dashboard/admin/prices\?done=price_saved"))

            # ... creates an account,
            await operator.click("nav >> text=Accounts")
            form = operator.locator("#create-account")
            await form.locator("input[name=name]").fill("Acme Robotics")
            await form.locator("input[name=email]").fill("billing@acme.example")
            await form.locator("button").click()
            await operator.wait_for_url(
                re.compile(r".*/dashboard/admin/accounts/\d+\?done=account_created")
            )
            account_id = int(re.findall(r"/accounts/(\d+)", operator.url)[0])

            # ... a key (its secret shown once),
            await operator.click("text=Create a key")
            key_form = operator.locator("#create-key")
            await key_form.locator("input[name=name]").fill("production")
            await key_form.locator("button").click()
            await operator.wait_for_selector("#new-secret")
            secret = (await operator.inner_text("#new-secret")).strip()
            assert secret.startswith("sk-sn19-")
            await screenshot(operator, "operator-key-created")
            await operator.click("text=Done")

            # ... grants credits with a reason,
            grant = operator.locator("#grant")
            await grant.locator("input[name=amount]").fill("25")
            await grant.locator("input[name=reason]").fill("launch credit")
            await grant.locator("button").click()
            await operator.wait_for_url(re.compile(r".*done=credits_granted"))
            assert await _balance(operator) == Decimal("25.00")

            # ... and invites the customer.
            invite = operator.locator("#invite")
            await invite.locator("input[name=email]").fill(customer_email)
            await invite.locator("button").click()
            link = (await operator.inner_text("#invite-link")).strip()
            assert link.startswith(f"{base}/dashboard/invite/")

            # The key works against the API (the gateway, through the openai SDK).
            assert await api.chat(secret) == 4
            await wait_settled(billing, account_id, 1)

            # The customer accepts the invitation and sees that usage and the balance.
            customer_context = await browser.new_context(viewport=DESKTOP)
            customer = await customer_context.new_page()
            customer.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await customer.goto(link)
            await customer.fill("input[name=password]", PASSWORD)
            await customer.click("button[type=submit]")
            await customer.wait_for_url(f"{base}/dashboard/overview")
            balance = await _balance(customer)
            assert Decimal(0) < balance < Decimal(25)
            spent = Decimal(25) - balance
            await screenshot(customer, "customer-overview")
            await customer.click("nav >> text=Usage")
            await customer.wait_for_url(f"{base}/dashboard/usage")
            assert await customer.inner_text("#requests") == "1"
            assert credits_of(await customer.inner_text("#spent")) == spent
            await screenshot(customer, "customer-usage")

            # ... rotates the key: the old secret stops working, the new one works.
            await customer.click("nav >> text=API keys")
            await customer.click("text=production")
            await customer.click("#rotate")
            await customer.wait_for_selector("#new-secret")
            new_secret = (await customer.inner_text("#new-secret")).strip()
            assert new_secret != secret
            await screenshot(customer, "customer-key-rotated")
            assert await eventually(lambda: api.refused(secret))
            assert await api.chat(new_secret) == 4
            await wait_settled(billing, account_id, api.answered)
            await customer.click("text=Done")
            await screenshot(customer, "customer-keys")

            # ... tops up through Stripe Checkout; the signed webhook credits the account.
            await customer.route(
                "https://checkout.stripe.test/**",
                lambda route: route.fulfill(
                    status=200,
                    content_type="text/html",
                    body="<h1>Stripe Checkout (test stand-in)</h1>",
                ),
            )
            await customer.click("nav >> text=Billing")
            await customer.wait_for_url(f"{base}/dashboard/billing")
            before = await _balance(customer)
            await customer.fill("#topup input[name=credits]", "10")
            await customer.click("#topup button")
            await customer.wait_for_url(
                re.compile(r"https://checkout\.stripe\.test/c/pay/cs_test_\w+")
            )
            session_id = customer.url.rsplit("/", 1)[1]
            [sent] = stub.requests
            assert sent["success_url"] == f"{base}/dashboard/billing?checkout=success"
            paid = payload_of(
                event(
                    "checkout.session.completed",
                    {
                        "id": session_id,
                        "object": "checkout.session",
                        "amount_total": 1000,
                        "currency": "usd",
                        "payment_status": "paid",
                        "payment_intent": f"pi_{session_id}",
                        "client_reference_id": str(account_id),
                        "metadata": {"account_id": str(account_id), "credits": str(10 * MICRO)},
                    },
                )
            )
            async with httpx.AsyncClient() as http:
                delivered = await http.post(
                    f"{api.url}/v1/billing/stripe/webhook",
                    content=paid,
                    headers={"stripe-signature": sign(paid, WEBHOOK_SECRET)},
                )
            assert delivered.status_code == 200, delivered.text
            await customer.goto(sent["success_url"])  # where Stripe sends the customer back
            assert await _balance(customer) == before + 10
            assert "Payment received" in await customer.inner_text("main")
            await screenshot(customer, "customer-billing")

            # Phone-sized screens get the same pages.
            phone = await (
                await browser.new_context(
                    viewport=PHONE, storage_state=await customer_context.storage_state()
                )
            ).new_page()
            await phone.goto(f"{base}/dashboard/overview")
            assert await _balance(phone) == before + 10
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"] + 1, f"horizontal scrolling on a phone: {width}px"
            await screenshot(phone, "customer-overview-phone")

            # Back to the operator: the overview and the account show the traffic and money
            # (with two months of another customer's history, so the charts have a shape).
            other = await billing.accounts.create("Globex")
            history = await seed_history(
                db, other.id, (await billing.keys.create(other.id, "k")).key.id
            )
            since = date.today() - timedelta(days=29)
            seeded = Decimal(sum(c for d, c in history.items() if d >= since)) / MICRO
            # What the ledger charged this account: the two chats, and any answer the rotated
            # key still got before the rotation reached the gateway.
            charged = Decimal(
                sum(r.cost for r in await billing.usage.requests(account_id, limit=100))
            )
            assert charged / MICRO >= spent * 2
            await operator.goto(f"{base}/dashboard/admin")
            revenue = credits_of(await operator.inner_text("#revenue"))
            assert revenue == earlier + charged / MICRO + seeded
            await screenshot(operator, "operator-overview")
            await operator.goto(f"{base}/dashboard/admin/accounts/{account_id}")
            await screenshot(operator, "operator-account")
            await operator.goto(f"{base}/dashboard/admin/audit")
            audit = await operator.inner_text("#audit")
            for action in (
                "account.create",
                "key.create",
                "credits.grant",
                "key.rotate",
                "checkout.create",
            ):
                assert action in audit
            await screenshot(operator, "operator-audit")
    finally:
        await billing.aclose()
