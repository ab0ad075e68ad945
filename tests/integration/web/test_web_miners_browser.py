"""The operator's miner pages in a real Chromium, with a seeded validator history (metagraph,
24 periods, checks, a weight run set on chain, routes and live counters in Redis): the miners
table sorts and filters, a miner's page explains its weight down to the u16 that was sent, the
checker and chain pages render, and the table reads on a phone. Screenshots go to
artifacts/screenshots/ (the miners page also to docs/img/ with SN19_DOC_SCREENSHOTS=1)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from billing import Billing
from core.db.engine import Database
from protocol.catalog import Catalog
from scoring import ScoreboardReader
from tests.integration.web.conftest import Users
from tests.support.browser import chromium, screenshot
from tests.support.dashboard import PASSWORD, build_app, web_settings
from tests.support.net import free_port
from tests.support.scoreboard import flaky, hotkey, seed_scoreboard
from tests.support.scoring import clear_scoring_tables
from tests.support.serving import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.redis]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MINERS = 24


async def _sign_in(page: Any, base: str, email: str) -> None:
    await page.goto(f"{base}/dashboard/admin/miners")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/dashboard/admin/miners")


async def _column(page: Any, index: int) -> list[str]:
    cells = page.locator(f"#miners tbody tr td:nth-child({index})")
    return [text.strip() for text in await cells.all_inner_texts()]


async def test_operator_reads_miners_and_a_weight_explanation(
    db: Database, dev_catalog: Catalog, users: Users, redis_client: Redis, redis_prefix: str
) -> None:
    await clear_scoring_tables(db)
    await seed_scoreboard(
        db,
        dev_catalog,
        miners=MINERS,
        periods=24,
        checks=6000,
        redis=redis_client,
        prefix=redis_prefix,
    )
    settings = web_settings(redis_prefix)
    billing = Billing.create(settings, dev_catalog, db, redis_client)
    reader = ScoreboardReader.from_settings(
        settings, db=db, redis=redis_client, catalog=dev_catalog
    )
    expected = {m.hotkey: m for m in await reader.miners()}
    support = await users("support")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_app(settings, db, billing, dev_catalog, redis_client)
    async with (
        serve_app(app, port=port, server="uvicorn", health="/dashboard/login"),
        chromium() as browser,
    ):
        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await _sign_in(page, base, support.email)

        # Every miner and the validator, by uid; statuses as scoring reports them.
        uids = await _column(page, 1)
        assert uids == [str(uid) for uid in range(MINERS + 1)]
        statuses = await _column(page, 3)
        assert statuses[0] == "validator"
        assert statuses[5] == "not serving" and statuses[1] == "routed"
        await screenshot(page, "operator-miners")

        # Sorted by weight (largest first), then one task only.
        await page.click("#miners th >> text=Weight")
        await page.wait_for_url("**sort=weight**")
        heaviest = max(expected.values(), key=lambda m: m.weight or 0.0)
        assert (await _column(page, 1))[0] == str(heaviest.uid)
        await page.select_option("select[name=task]", "sn19-tiny-chat")
        await page.click("#miner-filters button")
        await page.wait_for_url("**task=sn19-tiny-chat**")
        assert "Capacity" in await page.inner_text("#miners thead")

        # A flaky miner's page: failures with their scores, and the weight explained to u16.
        bad = next(i for i in range(1, MINERS + 1) if flaky(i))
        await page.goto(f"{base}/dashboard/admin/miners/{hotkey(bad)}")
        assert await page.locator("#failures tbody tr").count() > 0
        assert await page.inner_text("#u16") == str(expected[hotkey(bad)].weight_u16)
        for task in dev_catalog.enabled():
            assert await page.locator(f"#task-{task.id} figure.chart").count() == 2
        await screenshot(page, "operator-miner")
        await page.set_viewport_size({"width": 1280, "height": 1900})
        await page.evaluate("document.getElementById('explanation').scrollIntoView()")
        await screenshot(page, "operator-miner-explanation", document=True)
        await page.set_viewport_size(DESKTOP)

        await page.click("nav >> text=Checker")
        await page.wait_for_url(f"{base}/dashboard/admin/checker")
        assert await page.inner_text("#checked") == "6,000"
        await screenshot(page, "operator-checker")
        await page.click("nav >> text=Chain")
        await page.wait_for_url(f"{base}/dashboard/admin/chain")
        assert await page.locator("#runs tbody tr").count() == 1
        await screenshot(page, "operator-chain")

        # On a phone the table scrolls inside its card; the page itself does not.
        phone = await (
            await browser.new_context(
                viewport=PHONE, storage_state=await page.context.storage_state()
            )
        ).new_page()
        await phone.goto(f"{base}/dashboard/admin/miners")
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, f"horizontal scrolling on a phone: {width}px"
        await screenshot(phone, "operator-miners-phone")
