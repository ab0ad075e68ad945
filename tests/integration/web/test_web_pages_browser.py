"""Every dashboard page as people see it, in a real Chromium: axe-core finds no serious or
critical violation in light or dark mode; at 390 px no page scrolls sideways and every
navigation target can be reached (through the Menu); an empty account's chart has clean axes;
reloading the page that shows a new key's secret creates no second key; behind a trusted
proxy that says https the session cookie is Secure. Screenshots of the pages at 1280 and 390 px
go to artifacts/screenshots/ (the documented ones also to docs/img/ with
SN19_DOC_SCREENSHOTS=1: see tests/unit/docs/test_screenshots_current.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from billing import Billing
from billing.money import MICRO
from core.db.engine import Database
from protocol.catalog import Catalog
from tests.integration.web.conftest import Users
from tests.support.a11y import axe_violations, overflow, unreachable_nav
from tests.support.browser import chromium, screenshot
from tests.support.dashboard import PASSWORD, build_app, spend, web_settings
from tests.support.net import free_port
from tests.support.scoreboard import flaky, hotkey, seed_scoreboard
from tests.support.scoring import clear_scoring_tables
from tests.support.serving import serve_app
from web.audit import PUBLIC_SCOREBOARD, SIGNUP_ENABLED, SiteSettings
from web.invitations import InvitationService
from web.users import UserService

pytestmark = [pytest.mark.browser, pytest.mark.redis]

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# Pages whose screenshots the docs show (docs/img/<name>.png, at 1280 px unless -phone).
DOCUMENTED = {
    "customer-overview",
    "customer-overview-phone",
    "customer-usage",
    "customer-billing",
    "customer-request",
    "operator-overview",
    "operator-account",
    "operator-miners",
    "operator-miner",
    "operator-menu-phone",
    "public-scoreboard-miner-phone",
}


async def _sign_in(context: Any, base: str, email: str) -> None:
    page = await context.new_page()
    await page.goto(f"{base}/dashboard/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.close()


async def _world(
    db: Database, billing: Billing, catalog: Catalog, users: Users, redis: Redis, prefix: str
) -> dict[str, Any]:
    await clear_scoring_tables(db)
    await seed_scoreboard(
        db, catalog, miners=10, periods=12, checks=900, redis=redis, prefix=prefix
    )
    site = SiteSettings(db, signup_default=False)
    await site.set_flag(PUBLIC_SCOREBOARD, True, actor="test")
    await site.set_flag(SIGNUP_ENABLED, True, actor="test")
    acme = await billing.accounts.create("Acme Robotics", email="ops@acme.example")
    await billing.accounts.grant(acme.id, 25 * MICRO, actor="operator:ann", reason="launch credit")
    created = await billing.keys.create(acme.id, "production")
    for _ in range(6):
        await spend(billing, catalog, created.secret)
    [served] = await billing.usage.requests(acme.id, limit=1)
    assert served.miner_hotkey
    await billing.usage.receipts.record(
        request_id=served.request_id,
        task=served.task,
        kind="chat",
        miner_hotkey=served.miner_hotkey,
        miner_uid=3,
        outcome="ok",
        receipt=json.dumps(
            {
                "status": "valid",
                "miner": served.miner_hotkey,
                "validator": "5ValidatorHotkeyForTheDashboardTest" + "x" * 13,
                "nonce": "1764979200000000000",
                "sha256": "9f" * 32,
                "signature": "0x" + "ab" * 64,
            }
        ),
        receipt_status="valid",
        ttft_s=0.12,
        total_s=0.4,
        attempts=1,
    )
    newco = await billing.accounts.create("Newco")
    invitations = InvitationService(db, UserService(db), ttl_s=3600)
    token, _ = await invitations.create(
        f"invitee-{acme.id}@example.com", role="customer", account_id=acme.id, created_by="test"
    )
    return {
        "admin": await users("admin"),
        "customer": await users("customer", account_id=acme.id),
        "newcomer": await users("customer", account_id=newco.id),
        "account": acme.id,
        "key": created.key.id,
        "request": served.request_id,
        "miner": hotkey(next(i for i in range(1, 11) if flaky(i))),
        "invitation": token,
    }


def _pages(w: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(screenshot name, path under /dashboard, who looks at it)."""
    return [
        ("sign-in", "/login", "anonymous"),
        ("sign-up", "/signup", "anonymous"),
        ("invitation", f"/invite/{w['invitation']}", "anonymous"),
        ("public-scoreboard", "/scoreboard", "anonymous"),
        ("public-scoreboard-miner", f"/scoreboard/{w['miner']}", "anonymous"),
        ("customer-overview", "/overview", "customer"),
        ("customer-keys", "/keys", "customer"),
        ("customer-key", f"/keys/{w['key']}", "customer"),
        ("customer-usage", "/usage", "customer"),
        ("customer-requests", "/usage/requests", "customer"),
        ("customer-request", f"/usage/requests/{w['request']}", "customer"),
        ("customer-billing", "/billing", "customer"),
        ("customer-docs", "/docs", "customer"),
        ("customer-empty-overview", "/overview", "newcomer"),
        ("not-found", "/no-such-page", "customer"),
        ("operator-overview", "/admin", "admin"),
        ("operator-accounts", "/admin/accounts", "admin"),
        ("operator-account", f"/admin/accounts/{w['account']}", "admin"),
        ("operator-key", f"/admin/keys/{w['key']}", "admin"),
        ("operator-prices", "/admin/prices", "admin"),
        ("operator-users", "/admin/users", "admin"),
        ("operator-audit", "/admin/audit", "admin"),
        ("operator-settings", "/admin/settings", "admin"),
        ("operator-miners", "/admin/miners", "admin"),
        ("operator-miner", f"/admin/miners/{w['miner']}", "admin"),
        ("operator-checker", "/admin/checker", "admin"),
        ("operator-chain", "/admin/chain", "admin"),
    ]


async def test_every_page_reads_well_on_any_screen_in_both_colour_schemes(
    db: Database,
    dev_catalog: Catalog,
    users: Users,
    redis_client: Redis,
    redis_prefix: str,
) -> None:
    settings = web_settings(redis_prefix)
    billing = Billing.create(settings, dev_catalog, db, redis_client)
    world = await _world(db, billing, dev_catalog, users, redis_client, redis_prefix)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_app(settings, db, billing, dev_catalog, redis_client)
    problems: list[str] = []
    async with (
        serve_app(app, port=port, server="uvicorn", health="/dashboard/login"),
        chromium() as browser,
    ):
        contexts: dict[tuple[str, str, str], Any] = {}

        async def context(who: str, scheme: str, size: str) -> Any:
            found = contexts.get((who, scheme, size))
            if found is None:
                found = await browser.new_context(
                    viewport=PHONE if size == "phone" else DESKTOP, color_scheme=scheme
                )
                if who != "anonymous":
                    await _sign_in(found, base, world[who].email)
                contexts[(who, scheme, size)] = found
            return found

        for name, path, who in _pages(world):
            for scheme in ("light", "dark"):
                page = await (await context(who, scheme, "desktop")).new_page()
                response = await page.goto(f"{base}/dashboard{path}")
                assert response is not None
                expected = 404 if name == "not-found" else 200
                assert response.status == expected, f"{name}: {response.status}"
                for line in await axe_violations(page):
                    problems.append(f"{name} ({scheme}): {line}")
                if scheme == "light":
                    await screenshot(page, name, document=name in DOCUMENTED)
                await page.close()
            phone = await (await context(who, "light", "phone")).new_page()
            await phone.goto(f"{base}/dashboard{path}")
            for line in await axe_violations(phone):
                problems.append(f"{name} (390 px): {line}")
            if extra := await overflow(phone):
                problems.append(f"{name} (390 px): {extra} px wider than the screen")
            for label in await unreachable_nav(phone):
                problems.append(f"{name} (390 px): navigation '{label}' cannot be reached")
            await screenshot(phone, f"{name}-phone", document=f"{name}-phone" in DOCUMENTED)
            await phone.close()

        # The operator's menu, open on a phone.
        page = await (await context("admin", "light", "phone")).new_page()
        await page.goto(f"{base}/dashboard/admin/miners")
        await page.click("#menu-button")
        await screenshot(page, "operator-menu-phone", document=True)
        await page.close()

        # The empty account's spending chart: a clean axis, not "0.000001, 0, 0".
        page = await (await context("newcomer", "light", "desktop")).new_page()
        await page.goto(f"{base}/dashboard/overview")
        ticks = await page.locator("#spending figure.chart .y-ticks span").all_inner_texts()
        assert ticks == ["1", "0.75", "0.5", "0.25", "0"], ticks
        assert "No data in this period" in await page.inner_text("#spending")
        caption = await page.inner_text("#spending figcaption")
        assert "(credits)" in caption
        # The axis text keeps its size whatever the chart's width.
        sizes = await page.evaluate(
            "[...document.querySelectorAll('.y-ticks span')].map(s => getComputedStyle(s).fontSize)"
        )
        assert set(sizes) == {"11.25px"}, sizes
        await page.close()

        # Reloading the page that shows a new key's secret creates no second key.
        page = await (await context("customer", "light", "desktop")).new_page()
        await page.goto(f"{base}/dashboard/keys")
        before = len(await billing.keys.list_keys(world["account"]))
        await page.fill("#create-key input[name=name]", "laptop")
        await page.click("#create-key button[type=submit]")
        await page.wait_for_selector("#new-secret")
        assert "/dashboard/once/" in page.url
        assert (await page.inner_text("#new-secret")).startswith("sk-sn19-")
        for line in await axe_violations(page):
            problems.append(f"key-secret: {line}")
        await screenshot(page, "customer-key-created")
        await page.reload()
        assert "Already shown" in await page.inner_text("main")
        await page.go_back()
        assert len(await billing.keys.list_keys(world["account"])) == before + 1
        await page.close()

        # Behind a TLS proxy on this machine (trusted by default) the session cookie is Secure.
        proxied = await browser.new_context(
            viewport=DESKTOP, extra_http_headers={"x-forwarded-proto": "https"}
        )
        await _sign_in(proxied, base, world["admin"].email)
        session = next(c for c in await proxied.cookies() if c["name"] == "sn19_session")
        assert session["secure"] is True and session["httpOnly"] is True
        page = await proxied.new_page()
        await page.goto(f"{base}/dashboard/admin/settings")
        assert "https" in await page.inner_text("#connection")
        await proxied.close()

        for made in contexts.values():
            await made.close()
    assert not problems, "\n".join(problems)
