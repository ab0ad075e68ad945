"""Price overrides, and the framework-free endpoint handlers (balance, usage pagination)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from billing import Billing, BillingNotFound, Usage, estimate_chat
from billing.price_book import PriceBook
from billing.schemas import UsageQuery
from core.db.base import utcnow
from core.db.engine import Database
from core.errors import InvalidRequest
from protocol.catalog import Catalog, Price, Task
from tests.integration.billing.conftest import Funded


@pytest.fixture
async def restore_prices(billing: Billing, dev_catalog: Catalog) -> AsyncIterator[None]:
    yield
    for task in dev_catalog.tasks:
        await billing.prices.reset(task.id)


@pytest.mark.usefixtures("restore_prices")
async def test_override_takes_effect_and_settle_uses_the_hold_price(
    billing: Billing, funded: Funded, chat_task: Task
) -> None:
    ctx, _ = await funded(10**6)
    default = await billing.service.quote(chat_task, Usage(input_tokens=10**6))
    assert default == chat_task.price.input_per_million
    await billing.prices.set(
        chat_task.id, Price(input_per_million=1_000, output_per_million=2_000), actor="t"
    )
    hold = await billing.service.hold(ctx, chat_task, estimate_chat(1000, 1000), request_id="p")
    assert hold.amount == 3  # (1000*1000 + 1000*2000) / 1e6
    # The price changes while the request runs: the settle charges the hold's prices.
    await billing.prices.set(
        chat_task.id, Price(input_per_million=10**6, output_per_million=10**6), actor="t"
    )
    settled = await billing.service.settle(hold, Usage(input_tokens=1000, output_tokens=1000))
    assert settled.cost == 3
    listing = {p.task: p for p in await billing.prices.listing()}
    assert listing[chat_task.id].override == Price(
        input_per_million=10**6, output_per_million=10**6
    )
    assert listing[chat_task.id].default == chat_task.price
    assert await billing.prices.reset(chat_task.id) is True
    assert await billing.prices.reset(chat_task.id) is False
    assert await billing.service.quote(chat_task, Usage(input_tokens=10**6)) == default
    with pytest.raises(BillingNotFound):
        await billing.prices.set("no-such-task", Price(), actor="t")


@pytest.mark.usefixtures("restore_prices")
async def test_price_cache_ttl(db: Database, dev_catalog: Catalog, chat_task: Task) -> None:
    now = [0.0]
    book = PriceBook(db, dev_catalog, ttl_s=30.0, clock=lambda: now[0])
    writer = PriceBook(db, dev_catalog)
    await writer.reset(chat_task.id)
    assert await book.price(chat_task) == chat_task.price
    await writer.set(chat_task.id, Price(input_per_million=7), actor="t")
    now[0] = 10.0
    assert await book.price(chat_task) == chat_task.price  # still cached
    now[0] = 31.0
    assert await book.price(chat_task) == Price(input_per_million=7)
    await writer.reset(chat_task.id)


async def test_balance_endpoint(billing: Billing, funded: Funded, chat_task: Task) -> None:
    ctx, _ = await funded(2_500_000)
    await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="b")
    response = await billing.api.balance(ctx.account_id)
    assert (response.available, response.available_micro) == ("2.499000", 2_499_000)
    assert (response.held, response.held_micro) == ("0.001000", 1000)
    with pytest.raises(BillingNotFound):
        await billing.api.balance(10**9)


async def test_usage_endpoint_pages_by_day_and_model(
    billing: Billing, funded: Funded, chat_task: Task, embedding_task: Task
) -> None:
    ctx, _ = await funded(10**7)
    for task, usage in (
        (chat_task, Usage(input_tokens=10, output_tokens=20)),
        (embedding_task, Usage(input_tokens=50)),
    ):
        for i in range(2):
            hold = await billing.service.hold(
                ctx,
                task,
                estimate_chat(100, 100) if task.kind == "chat" else Usage(input_tokens=100),
                request_id=f"{task.id}{i}",
            )
            await billing.service.settle(hold, usage)
    page = await billing.api.usage(ctx.account_id, UsageQuery(limit=1))
    assert len(page.data) == 1 and page.has_more and page.next_cursor
    first = page.data[0]
    assert first.date == utcnow().date() and first.model == "all-minilm-l6-v2"
    assert (first.requests, first.input_tokens, first.cost_micro) == (2, 100, 2)
    page2 = await billing.api.usage(ctx.account_id, UsageQuery(limit=1, cursor=page.next_cursor))
    assert [b.model for b in page2.data] == ["sn19-tiny-chat"] and not page2.has_more
    assert page2.data[0].cost == "0.000010"  # 2 x ceil((10*100000 + 20*200000)/1e6) = 2 x 5
    only_chat = await billing.api.usage(ctx.account_id, UsageQuery(model="sn19-tiny-chat"))
    assert [b.model for b in only_chat.data] == ["sn19-tiny-chat"]
    by_key = await billing.api.usage(ctx.account_id, UsageQuery(key_id=ctx.key_id + 10**6))
    assert by_key.data == []
    old = date.today() - timedelta(days=400)
    assert (await billing.api.usage(ctx.account_id, UsageQuery(start=old, end=old))).data == []
    with pytest.raises(InvalidRequest):
        await billing.api.usage(ctx.account_id, UsageQuery(start=date.today(), end=old))
    with pytest.raises(InvalidRequest):
        await billing.api.usage(ctx.account_id, UsageQuery(cursor="!!!"))
    records = await billing.usage.requests(ctx.account_id, limit=3)
    assert len(records) == 3 and records[0].id > records[1].id
    more = await billing.usage.requests(ctx.account_id, before_id=records[-1].id)
    assert len(more) == 1
