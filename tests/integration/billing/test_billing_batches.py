"""The group commit of one account's holds and settles on PostgreSQL (``billing.lanes``,
``billing.batching``, ``billing.fastbatch``): a batch admits each request that fits as if it had
come alone, never overdraws, closes each hold once, releases the holds of requests that went
away, and leaves a ledger that verifies — under a single-account load far above what one row
lock per request allows."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from billing import Billing, InsufficientCredits, Usage, estimate_chat
from billing.fastbatch import CloseAsk, HoldAsk, close_holds, take_holds
from billing.fastpath import DriverPool
from billing.price_book import PriceBook
from billing.service import BillingService
from core.db.base import utcnow
from core.db.engine import Database
from core.settings import DatabaseSettings
from protocol.catalog import Catalog, Task
from tests.integration.billing.conftest import fund

pytestmark = pytest.mark.postgres


async def test_a_batch_admits_what_fits_as_if_each_came_alone(
    pg_billing: Billing, postgres_url: str, chat_task: Task
) -> None:
    key, _ = await fund(pg_billing, 1_000)
    price = await pg_billing.prices.price(chat_task)
    expires = utcnow()
    asks = [
        HoldAsk(key, chat_task, amount, price, f"r{i}", expires)
        for i, amount in enumerate([600, 500, 300, 100, 1])
    ]
    pool = DriverPool(postgres_url, DatabaseSettings())
    try:
        async with pool.connection() as connection:
            holds, account = await take_holds(connection, key.account_id, asks, now=utcnow())
    finally:
        await pool.close()
    # 600 fits, 500 does not (400 left), 300 fits, 100 fits, 1 does not (0 left).
    assert [hold.amount if hold else None for hold in holds] == [600, None, 300, 100, None]
    assert [hold.balance for hold in holds if hold] == [400, 100, 0]
    assert account == ("active", 1_000)
    assert (await pg_billing.accounts.balance(key.account_id)).available == 0
    report = await pg_billing.accounts.verify([key.account_id])
    assert report.ok, report


async def test_a_batch_closes_each_hold_once(
    pg_billing: Billing, postgres_url: str, chat_task: Task
) -> None:
    key, _ = await fund(pg_billing, 10_000)
    service = pg_billing.service
    holds = [
        await service.hold(key, chat_task, estimate_chat(0, 5000), request_id=f"h{i}")
        for i in range(3)
    ]
    await service.release(holds[2], reason="earlier")  # closed before the batch
    asks = [
        CloseAsk(hold, 100 * (i + 1), Usage(output_tokens=10), "ok", "settled", "5M", 5, "k", "r")
        for i, hold in enumerate([holds[0], holds[1], holds[0], holds[2]])
    ]
    pool = DriverPool(postgres_url, DatabaseSettings(), durable=False)
    try:
        async with pool.connection() as connection:
            balances = await close_holds(connection, key.account_id, asks, now=utcnow())
    finally:
        await pool.close()
    # The second ask of holds[0] and the ask of the released holds[2] replay (None).
    assert balances[1] == balances[0] and balances[2] is None and balances[3] is None
    assert balances[0] == 10_000 - 100 - 200
    report = await pg_billing.accounts.verify([key.account_id])
    assert report.ok, report


async def test_one_busy_account_under_load(
    pg_billing: Billing, postgres_url: str, chat_task: Task, dev_catalog: Catalog
) -> None:
    """256 concurrent requests of one account, each a hold then a settle, for a few seconds,
    with more requests in flight than the balance covers: nothing overdraws, every hold is
    closed once, the ledger verifies. (The rate is measured by benchmarks/billing_throughput.py,
    not here.)"""
    estimate = estimate_chat(0, 5000)
    price = await pg_billing.prices.price(chat_task)
    one = estimate.output_tokens * price.output_per_million // 1_000_000
    key, _ = await fund(pg_billing, one * 200 + one // 2)  # 200 holds at once, not 201
    wide = Database.from_url(postgres_url, DatabaseSettings(pool_size=8, max_overflow=0))
    service = BillingService(wide, PriceBook(wide, dev_catalog))
    rng = random.Random(7)
    done = refused = 0
    lowest = one * 200
    until = time.monotonic() + 3.0

    async def client(index: int) -> None:
        nonlocal done, refused, lowest
        while time.monotonic() < until:
            try:
                hold = await service.hold(key, chat_task, estimate, request_id=f"c{index}")
            except InsufficientCredits:
                refused += 1
                await asyncio.sleep(0.001)
                continue
            lowest = min(lowest, hold.balance)
            await service.settle(hold, Usage(output_tokens=rng.randrange(0, 5000)))
            done += 1

    try:
        await asyncio.gather(*(client(i) for i in range(256)))
        await service.drain()
    finally:
        await wide.dispose()
    assert lowest >= 0 and done > 0 and refused > 0
    balance = await pg_billing.accounts.balance(key.account_id)
    assert balance.held == 0 and balance.available >= 0
    report = await pg_billing.accounts.verify([key.account_id])
    assert report.ok, report


async def test_a_cancelled_request_leaves_no_open_hold(
    pg_billing: Billing, postgres_url: str, chat_task: Task, dev_catalog: Catalog
) -> None:
    key, _ = await fund(pg_billing, 10**9)
    wide = Database.from_url(postgres_url, DatabaseSettings(pool_size=4, max_overflow=0))
    service = BillingService(wide, PriceBook(wide, dev_catalog))
    try:
        tasks = [
            asyncio.create_task(
                service.hold(key, chat_task, estimate_chat(0, 100), request_id=f"x{i}")
            )
            for i in range(40)
        ]
        await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if not isinstance(outcome, BaseException):
                await service.release(outcome, reason="done")
        await service.drain()
    finally:
        await wide.dispose()
    balance = await pg_billing.accounts.balance(key.account_id)
    assert balance.held == 0 and balance.available == 10**9
    report = await pg_billing.accounts.verify([key.account_id])
    assert report.ok, report
