"""Billing through two gateway processes (``sn19 gateway``) sharing PostgreSQL and Redis, in front
of real miner servers: concurrent requests never overdraw and every success is billed once,
and the per-key rate limit holds across both replicas."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.tables.billing import Account, Hold, LedgerEntry, UsageRecord
from core.settings import Settings
from inference.instant import InstantTextEngine
from tests.support.billing_gateway import (
    CHAT,
    GatewayProcess,
    funded_key,
    gateway_processes,
    ledger_verify,
    miner_routes,
    settings_of,
    settings_overrides,
)
from tests.support.db import create_postgres_database, drop_postgres_database, run_in_thread
from tests.support.redis_fixtures import REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MESSAGES = [{"role": "user", "content": "Count to sixteen."}]
LENGTH = 16  # the miners' answer: exactly max_tokens, so a request costs exactly its hold


@dataclass
class Replicas:
    gateways: list[GatewayProcess]
    settings: Settings
    database_url: str


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    url = run_in_thread(create_postgres_database, "sn19_gw")
    yield url
    run_in_thread(drop_postgres_database, url)


@pytest.fixture(scope="module")
async def replicas(
    wallet_root: Path, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replicas]:
    work = tmp_path_factory.mktemp("replicas")
    prefix = f"sn19test:{uuid.uuid4().hex[:10]}:"
    engines = {CHAT: InstantTextEngine(length=LENGTH, delay_s=0.01)}
    sections = settings_overrides(
        data_dir=work,
        database_url=database_url,
        redis_url=REDIS_URL,
        prefix=prefix,
        wallet_root=wallet_root,
    )
    async with (
        miner_routes(wallet_root, REDIS_URL, prefix, {"r1": engines, "r2": dict(engines)}),
        gateway_processes(work, sections, 2) as gateways,
    ):
        yield Replicas(gateways, settings_of(sections), database_url)


async def _chat(
    session: aiohttp.ClientSession, url: str, key: str, request_id: str, *, stream: bool
) -> tuple[int, dict[str, str], bytes]:
    body: dict[str, Any] = {"model": CHAT, "messages": MESSAGES, "max_tokens": LENGTH}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    headers = {"Authorization": f"Bearer {key}", "x-request-id": request_id}
    async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def _warm(session: aiohttp.ClientSession, urls: list[str], key: str, count: int) -> None:
    """Open ``count`` connections per gateway and put the key in each one's auth cache."""
    headers = {"Authorization": f"Bearer {key}"}

    async def one(url: str) -> None:
        async with session.get(url + "/v1/models", headers=headers) as response:
            assert response.status == 200
            await response.read()

    await asyncio.gather(*(one(url) for url in urls for _ in range(count)))


async def _wait_closed(db: Database, account_id: int, timeout: float = 30.0) -> None:
    """Stream settles run after the response: wait until no hold of the account is open."""
    deadline = time.monotonic() + timeout
    while True:
        async with db.read() as session:
            open_holds = (
                await session.execute(
                    select(func.count())
                    .select_from(Hold)
                    .where(Hold.account_id == account_id, Hold.status == "open")
                )
            ).scalar_one()
        if open_holds == 0:
            return
        assert time.monotonic() < deadline, f"{open_holds} hold(s) still open"
        await asyncio.sleep(0.1)


async def test_no_overdraft_and_one_usage_record_per_success(replicas: Replicas) -> None:
    settings = replicas.settings
    urls = [gateway.url for gateway in replicas.gateways]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # What one request holds (and, answering exactly max_tokens, costs).
        probe_account, _, probe = await funded_key(settings, 1_000_000)
        status, headers, _ = await _chat(session, urls[0], probe, "probe", stream=False)
        assert status == 200, headers
        cost = round(float(headers["x-sn19-cost"]) * 1_000_000)
        assert cost == round(float(headers["x-sn19-hold"]) * 1_000_000) > 0
        start = 50 * cost + cost // 2  # covers 50 requests, not 51
        account_id, _, key = await funded_key(settings, start)
        await _warm(session, urls, key, 100)
        results = await asyncio.gather(
            *(_chat(session, urls[i % 2], key, f"cc-{i}", stream=i % 4 >= 2) for i in range(200))
        )
    statuses = Counter(status for status, _, _ in results)
    others = [body[:300] for status, _, body in results if status not in (200, 402)]
    assert set(statuses) <= {200, 402}, (statuses, others[:3])
    assert statuses[200] + statuses[402] == 200
    assert statuses[200] == 50, statuses  # every success costs exactly what it held
    for i, (status, headers, body) in enumerate(results):
        assert "x-ratelimit-limit-requests" not in headers  # this key has no limits
        if status == 402:
            assert headers["x-should-retry"] == "false"
            assert b'"insufficient_quota"' in body
        elif i % 4 >= 2:
            assert body.endswith(b"data: [DONE]\n\n")
            assert "x-sn19-hold" in headers and "x-sn19-balance" in headers
        else:
            assert headers["x-sn19-cost"] == headers["x-sn19-hold"]
            assert float(headers["x-sn19-balance"]) >= 0
    succeeded = {f"cc-{i}" for i, (status, _, _) in enumerate(results) if status == 200}

    db = Database.from_url(replicas.database_url)
    try:
        await _wait_closed(db, account_id)
        async with db.read() as s:
            balance = (
                await s.execute(select(Account.balance).where(Account.id == account_id))
            ).scalar_one()
            lowest = (
                await s.execute(
                    select(func.min(LedgerEntry.balance_after)).where(
                        LedgerEntry.account_id == account_id
                    )
                )
            ).scalar_one()
            records = (
                await s.execute(
                    select(UsageRecord.request_id, UsageRecord.status, UsageRecord.cost).where(
                        UsageRecord.account_id == account_id
                    )
                )
            ).all()
            holds = (
                await s.execute(
                    select(func.count()).select_from(Hold).where(Hold.account_id == account_id)
                )
            ).scalar_one()
    finally:
        await db.dispose()
    assert lowest >= 0 and balance == start - 50 * cost == cost // 2
    # One hold and one usage record per success; a 402 took no hold and left no record.
    assert holds == 50
    per_request = Counter(request_id for request_id, _, _ in records)
    assert set(per_request) == succeeded and set(per_request.values()) == {1}
    assert {(status, charged) for _, status, charged in records} == {("ok", cost)}
    verified = ledger_verify(replicas.database_url, account_id, probe_account)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK: every balance equals its ledger" in verified.stdout
    everything = ledger_verify(replicas.database_url)
    assert everything.returncode == 0, everything.stdout + everything.stderr


async def test_rate_limit_holds_across_replicas(replicas: Replicas) -> None:
    urls = [gateway.url for gateway in replicas.gateways]
    _, _, key = await funded_key(replicas.settings, 100_000_000, rpm_limit=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _warm(session, urls, key, 100)
        began = time.monotonic()
        results = await asyncio.gather(
            *(_chat(session, urls[i % 2], key, f"rl-{i}", stream=False) for i in range(200))
        )
        burst = time.monotonic() - began
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {200, 429}, statuses
    # The bucket refills at one request per second: a burst lasting t seconds may admit
    # 60 + t; on this machine it takes well under a second.
    assert 59 <= statuses[200] <= 61, (statuses, burst)
    for status, headers, body in results:
        assert headers["x-ratelimit-limit-requests"] == "60"
        assert {"x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"} <= set(headers)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1 and int(headers["retry-after-ms"]) > 0
            assert b'"rate_limit_exceeded"' in body
