"""Concurrent holds never overdraw (many connections in one process, and several processes on
PostgreSQL), concurrent settles of one hold charge once, and holds left by a killed process are
released by the sweeper."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from billing import Billing, InsufficientCredits, KeyContext, Usage, estimate_chat
from billing.price_book import PriceBook
from billing.service import BillingService
from core.db.engine import Database
from core.db.tables.billing import Hold as HoldRow
from core.db.tables.billing import UsageRecord
from core.settings import DatabaseSettings
from protocol.catalog import Catalog, Task
from tests.integration.billing.conftest import Funded, fund

REPO = Path(__file__).resolve().parents[3]
COST = 1000  # estimate_chat(0, 5000) on the dev chat task
SETTLED = 500  # Usage(output_tokens=2500)


async def _count(db: Database, model: type, **where: object) -> int:
    async with db.read() as session:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int((await session.execute(stmt)).scalar_one())


async def test_concurrent_holds_never_overdraw(
    billing: Billing, db_url: str, funded: Funded, chat_task: Task, dev_catalog: Catalog
) -> None:
    ctx, _ = await funded(50 * COST + COST // 2)  # covers 50 holds, not 51
    # A wide pool so the holds really run in parallel on separate connections.
    wide = Database.from_url(db_url, DatabaseSettings(pool_size=20, max_overflow=20))
    service = BillingService(wide, PriceBook(wide, dev_catalog))
    balances: list[int] = []

    async def one(i: int) -> bool:
        try:
            hold = await service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id=f"c{i}")
        except InsufficientCredits:
            return False
        balances.append(hold.balance)
        await asyncio.sleep(0)
        settlement = await service.settle(hold, Usage(output_tokens=2500))
        balances.append(settlement.balance)
        return True

    try:
        outcomes = await asyncio.gather(*(one(i) for i in range(200)))
    finally:
        await wide.dispose()
    successes = sum(outcomes)
    # Settles give credit back while others are still holding, so more than 50 may fit in
    # total; what must hold exactly: the money adds up and nothing went negative.
    assert successes >= 50
    assert min(balances) >= 0
    balance = await billing.accounts.balance(ctx.account_id)
    assert balance.held == 0
    assert balance.available == 50 * COST + COST // 2 - successes * SETTLED
    assert await _count(billing.db, UsageRecord, key_id=ctx.key_id) == successes
    report = await billing.accounts.verify([ctx.account_id])
    assert report.ok, report


async def test_concurrent_holds_exact_count(
    billing: Billing, db_url: str, funded: Funded, chat_task: Task, dev_catalog: Catalog
) -> None:
    ctx, _ = await funded(50 * COST + COST // 2)
    wide = Database.from_url(db_url, DatabaseSettings(pool_size=20, max_overflow=20))
    service = BillingService(wide, PriceBook(wide, dev_catalog))

    async def one(i: int) -> int | None:
        try:
            return (
                await service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id=f"x{i}")
            ).balance
        except InsufficientCredits:
            return None

    try:
        results = await asyncio.gather(*(one(i) for i in range(200)))
    finally:
        await wide.dispose()
    held = [r for r in results if r is not None]
    assert len(held) == 50
    assert sorted(held) == [COST // 2 + COST * i for i in range(50)]
    balance = await billing.accounts.balance(ctx.account_id)
    assert (balance.available, balance.held) == (COST // 2, 50 * COST)
    report = await billing.accounts.verify([ctx.account_id])
    assert report.ok, report


async def test_concurrent_settles_of_one_hold_charge_once(
    billing: Billing, db_url: str, funded: Funded, chat_task: Task, dev_catalog: Catalog
) -> None:
    ctx, _ = await funded(10 * COST)
    hold = await billing.service.hold(ctx, chat_task, estimate_chat(0, 5000), request_id="dup")
    wide = Database.from_url(db_url, DatabaseSettings(pool_size=10))
    service = BillingService(wide, PriceBook(wide, dev_catalog))
    try:
        results = await asyncio.gather(
            *(service.settle(hold, Usage(output_tokens=2500)) for _ in range(5)),
            *(service.release(hold, reason="race") for _ in range(5)),
        )
    finally:
        await wide.dispose()
    assert sum(not r.replayed for r in results) == 1
    assert await _count(billing.db, UsageRecord, hold_id=hold.id) == 1
    report = await billing.accounts.verify([ctx.account_id])
    assert report.ok, report


def _worker(url: str, ctx: KeyContext, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.billing_worker",
            url,
            msgspec.json.encode(ctx).decode(),
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
async def test_holds_from_several_processes_never_overdraw(
    pg_billing: Billing, postgres_url: str
) -> None:
    billing = pg_billing
    ctx, _ = await fund(billing, 50 * COST + COST // 2)
    workers = [
        _worker(postgres_url, ctx, "--holds", "100", "--pool", "15", "--tag", f"p{n}")
        for n in range(2)
    ]
    outputs = [await asyncio.to_thread(w.communicate, timeout=120) for w in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    results = [json.loads(out.splitlines()[0]) for out, _ in outputs]
    assert sum(r["ok"] for r in results) == 50
    assert sum(r["refused"] for r in results) == 150
    assert all(r["ok"] > 0 for r in results), results  # both processes really competed
    balance = await billing.accounts.balance(ctx.account_id)
    assert (balance.available, balance.held) == (COST // 2, 50 * COST)
    report = await billing.accounts.verify([ctx.account_id])
    assert report.ok, report


async def test_crashed_process_holds_are_swept(
    billing: Billing, db_url: str, funded: Funded
) -> None:
    ctx, _ = await funded(100 * COST)
    worker = _worker(db_url, ctx, "--holds", "20", "--hang", "--expires-in", "2", "--tag", "crash")
    assert worker.stdout is not None
    line = await asyncio.to_thread(worker.stdout.readline)
    ready = await asyncio.to_thread(worker.stdout.readline)
    assert ready.strip() == "ready", worker.stderr.read() if worker.stderr else ""
    hold_ids = json.loads(line)["hold_ids"]
    assert len(hold_ids) == 20
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    worker.stdout.close()
    if worker.stderr:
        worker.stderr.close()
    assert (await billing.accounts.balance(ctx.account_id)).held == 20 * COST
    await asyncio.sleep(2.2)
    await billing.service.sweep_expired_holds()
    async with billing.db.read() as session:
        statuses = set(
            (
                await session.execute(select(HoldRow.status).where(HoldRow.id.in_(hold_ids)))
            ).scalars()
        )
    assert statuses == {"expired"}
    balance = await billing.accounts.balance(ctx.account_id)
    assert (balance.available, balance.held) == (100 * COST, 0)
    report = await billing.accounts.verify([ctx.account_id])
    assert report.ok, report
