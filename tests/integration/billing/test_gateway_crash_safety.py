"""What a request costs when it does not end normally, through gateway processes on PostgreSQL and
Redis in front of a slow miner: a client that disconnects mid-stream pays for the tokens it was
sent, and the holds of a gateway killed with ``kill -9`` are released by the sweeper of the
replica that survived (the hold expiry is short here: a catalog whose chat task has a 3 s
timeout, plus 1 s of grace)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from billing.costs import chat_cost
from core.db.engine import Database
from core.db.tables.billing import Account, Hold, UsageRecord
from core.settings import Settings
from inference.instant import InstantTextEngine
from protocol.catalog import builtin_catalog_text, resolve_catalog
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

MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
MAX_TOKENS = 400
DEV_TIMEOUTS = "timeouts = { first_token_s = 20.0, idle_s = 20.0, total_s = 180.0 }"
SHORT_TIMEOUTS = "timeouts = { first_token_s = 3.0, idle_s = 3.0, total_s = 3.0 }"


@dataclass
class Replicas:
    gateways: list[GatewayProcess]
    settings: Settings
    database_url: str
    db: Database


def short_catalog(path: Path) -> Path:
    text = builtin_catalog_text("dev")
    assert text.count(DEV_TIMEOUTS) == 1  # the chat task's
    path.write_text(text.replace(DEV_TIMEOUTS, SHORT_TIMEOUTS))
    return path


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    url = run_in_thread(create_postgres_database, "sn19_gwcrash")
    yield url
    run_in_thread(drop_postgres_database, url)


@pytest.fixture(scope="module")
async def replicas(
    wallet_root: Path, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replicas]:
    work = tmp_path_factory.mktemp("crash")
    prefix = f"sn19test:{uuid.uuid4().hex[:10]}:"
    sections = settings_overrides(
        data_dir=work,
        database_url=database_url,
        redis_url=REDIS_URL,
        prefix=prefix,
        wallet_root=wallet_root,
        catalog=str(short_catalog(work / "catalog.toml")),
        billing={"hold_grace_s": 1.0, "sweep_interval_s": 0.5},
        gateway={"keepalive_s": 60.0},
    )
    slow = {CHAT: InstantTextEngine(length=MAX_TOKENS, delay_s=0.05)}
    db = Database.from_url(database_url)
    try:
        async with (
            miner_routes(wallet_root, REDIS_URL, prefix, {"slow": slow}),
            gateway_processes(work, sections, 2) as gateways,
        ):
            yield Replicas(gateways, settings_of(sections), database_url, db)
    finally:
        await db.dispose()


async def _holds(db: Database, account_id: int) -> dict[str, int]:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(Hold.status, func.count())
                .where(Hold.account_id == account_id)
                .group_by(Hold.status)
            )
        ).all()
    return {status: count for status, count in rows}


async def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def _body(stream: bool = True) -> dict[str, object]:
    return {"model": CHAT, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": stream}


async def test_client_disconnect_mid_stream_pays_for_what_was_sent(replicas: Replicas) -> None:
    start = 10_000_000
    account_id, _, key = await funded_key(replicas.settings, start)
    headers = {"Authorization": f"Bearer {key}", "x-request-id": "disconnect-1"}
    events = 0
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            replicas.gateways[1].url + "/v1/chat/completions", json=_body(), headers=headers
        ) as response,
    ):
        assert response.status == 200
        assert "x-sn19-hold" in response.headers
        async for line in response.content:
            events += line.startswith(b"data: ")
            if events >= 5:
                break
        response.close()  # the client goes away mid-stream

    async def recorded() -> bool:
        return (await _holds(replicas.db, account_id)) == {"settled": 1}

    await _until(recorded, 15, "the hold of the disconnected stream was not settled")
    async with replicas.db.read() as session:
        record = (
            await session.execute(
                select(UsageRecord).where(UsageRecord.request_id == "disconnect-1")
            )
        ).scalar_one()
        balance = (
            await session.execute(select(Account.balance).where(Account.id == account_id))
        ).scalar_one()
    assert record.status == "client_disconnected"
    assert 5 <= record.output_tokens < MAX_TOKENS
    task = resolve_catalog("dev").get(CHAT)
    assert task is not None
    assert record.cost == chat_cost(task.price, record.input_tokens, record.output_tokens) > 0
    assert balance == start - record.cost


async def test_kill_9_leaves_holds_that_the_sweeper_releases(replicas: Replicas) -> None:
    doomed, survivor = replicas.gateways
    start = 10_000_000
    account_id, _, key = await funded_key(replicas.settings, start)
    headers = {"Authorization": f"Bearer {key}"}
    first_chunks = asyncio.Event()
    started = 0

    async def stream(session: aiohttp.ClientSession) -> None:
        nonlocal started
        async with session.post(
            doomed.url + "/v1/chat/completions", json=_body(), headers=headers
        ) as response:
            assert response.status == 200
            await response.content.readline()  # the first event: the hold is taken
            started += 1
            if started == 10:
                first_chunks.set()
            await response.read()  # until the gateway dies

    async with aiohttp.ClientSession() as session:
        streams = [asyncio.create_task(stream(session)) for _ in range(10)]
        await asyncio.wait_for(first_chunks.wait(), 30)
        assert (await _holds(replicas.db, account_id)) == {"open": 10}
        doomed.kill()
        results = await asyncio.gather(*streams, return_exceptions=True)
    assert all(isinstance(result, aiohttp.ClientError) for result in results), results
    assert (await _holds(replicas.db, account_id)) == {"open": 10}  # nobody settled them

    async def swept() -> bool:
        return (await _holds(replicas.db, account_id)) == {"expired": 10}

    await _until(swept, 30, "the survivor's sweeper did not release the dead gateway's holds")
    # The survivor says so on /metrics (the SN19HoldsExpiringUnreleased alert).
    async with aiohttp.ClientSession() as session, session.get(survivor.url + "/metrics") as got:
        exposition = await got.text()
    [line] = [
        x for x in exposition.splitlines() if x.startswith("sn19_billing_holds_expired_total")
    ]
    assert float(line.split()[-1]) >= 10
    async with replicas.db.read() as session:
        balance = (
            await session.execute(select(Account.balance).where(Account.id == account_id))
        ).scalar_one()
        statuses = (
            await session.execute(
                select(UsageRecord.status, UsageRecord.cost).where(
                    UsageRecord.account_id == account_id
                )
            )
        ).all()
    assert balance == start  # nothing was charged for the streams the crash cut off
    assert sorted(statuses) == [("expired", 0)] * 10
    verified = ledger_verify(replicas.database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The survivor still serves (and bills) normally.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            survivor.url + "/v1/chat/completions",
            json={**_body(stream=False), "max_tokens": 4},
            headers=headers,
        ) as response,
    ):
        assert response.status == 200, await response.text()
        assert float(response.headers["x-sn19-cost"]) > 0
