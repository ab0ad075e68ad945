"""The ``Exchange`` (``gateway.exchange``) over real billing on SQLite and PostgreSQL: for every
way a request can end, exactly one of settle / release happens for its hold, the customer pays
only for what was delivered, and ``ledger.verify`` passes afterwards.

The miners are in-memory (``FakeMinerClient``), so each exit can be produced exactly; the money
path (keys, holds, settles, releases, the sweeper) is the real one, and the gateway is served
on a real port in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from billing import Billing, Usage, cost
from core.db.base import utcnow
from core.db.tables.billing import Hold as HoldRow
from core.db.tables.billing import UsageRecord
from core.miners import InProcessStats
from gateway import create_app
from gateway.auth import BillingAuthenticator
from protocol.catalog import Catalog
from tests.integration.billing.conftest import Funded
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import CHAT, FakeRedis, StaticRoutes, route, settings_for
from tests.support.miner_streams import chat_chunks, stream_body
from tests.support.serving import serve_app

CREDITS = 1_000_000
REQUEST = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def ok(count: int = 8, **canned: Any) -> Canned:
    return Canned(200, stream_body(chat_chunks(count)), **canned)


class Reply:
    def __init__(self, status: int, headers: Any, content: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.content = content


class Client:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def post(self, path: str, *, json: Any, headers: dict[str, str]) -> Reply:
        async with self.session.post(self.url + path, json=json, headers=headers) as response:
            return Reply(response.status, response.headers, await response.read())


@contextlib.asynccontextmanager
async def gateway_for(tmp: Path, billing: Billing, answer: Canned) -> AsyncIterator[Client]:
    app = create_app(
        settings_for(tmp),
        redis=FakeRedis(),
        routes=StaticRoutes([route(CHAT, 1)]),
        miner_client=FakeMinerClient(lambda *_: answer),
        stats=InProcessStats(),
        authenticator=BillingAuthenticator(billing.authenticator),
        access=billing.access,
    )
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        yield Client(url, session)


async def holds_of(billing: Billing, account_id: int) -> list[HoldRow]:
    async with billing.db.read() as session:
        rows = await session.execute(select(HoldRow).where(HoldRow.account_id == account_id))
        return list(rows.scalars().all())


async def usage_of(billing: Billing, account_id: int) -> list[UsageRecord]:
    async with billing.db.read() as session:
        rows = await session.execute(
            select(UsageRecord).where(UsageRecord.account_id == account_id)
        )
        return list(rows.scalars().all())


async def settled(billing: Billing, account_id: int, count: int = 1) -> list[HoldRow]:
    """The account's holds once ``count`` of them closed (settles run in the background)."""
    for _ in range(200):
        holds = await holds_of(billing, account_id)
        if len([h for h in holds if h.status != "open"]) >= count:
            await billing.access.drain()
            return await holds_of(billing, account_id)
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"no closed hold: {[h.status for h in await holds_of(billing, account_id)]}"
    )


async def verified(billing: Billing, account_id: int) -> None:
    report = await billing.accounts.verify([account_id])
    assert report.ok, report


def chat_cost_of(billing_task: Any, prompt: int, output: int) -> int:
    return cost("chat", billing_task.price, Usage(input_tokens=prompt, output_tokens=output))


@pytest.mark.parametrize("stream", [False, True])
async def test_success_settles_once_with_the_delivered_usage(
    tmp_path: Path, billing: Billing, funded: Funded, dev_catalog: Catalog, stream: bool
) -> None:
    key, secret = await funded(CREDITS)
    async with gateway_for(tmp_path, billing, ok(5)) as client:
        reply = await client.post(
            "/v1/chat/completions",
            json={**REQUEST, "stream": stream},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert reply.status_code == 200
        [hold] = await settled(billing, key.account_id)
    assert hold.status == "settled"
    [record] = await usage_of(billing, key.account_id)
    assert record.status == "ok" and record.output_tokens == 5
    task = dev_catalog.get(CHAT)
    assert hold.cost == chat_cost_of(task, record.input_tokens, 5)
    await verified(billing, key.account_id)


async def test_refusals_before_dispatch_take_no_hold(
    tmp_path: Path, billing: Billing, funded: Funded
) -> None:
    key, secret = await funded(CREDITS)
    poor, poor_secret = await funded(1)
    async with gateway_for(tmp_path, billing, ok()) as client:
        invalid = await client.post(
            "/v1/chat/completions",
            json={**REQUEST, "max_tokens": 10**9},
            headers={"Authorization": f"Bearer {secret}"},
        )
        broke = await client.post(
            "/v1/chat/completions", json=REQUEST, headers={"Authorization": f"Bearer {poor_secret}"}
        )
    assert invalid.status_code == 400 and broke.status_code == 402
    assert await holds_of(billing, key.account_id) == []
    assert await holds_of(billing, poor.account_id) == []
    await verified(billing, key.account_id)
    await verified(billing, poor.account_id)


@pytest.mark.parametrize("stream", [False, True])
async def test_miner_failure_before_the_first_byte_releases_before_the_error(
    tmp_path: Path, billing: Billing, funded: Funded, stream: bool
) -> None:
    key, secret = await funded(CREDITS)
    async with gateway_for(tmp_path, billing, Canned(503, [b"busy"])) as client:
        reply = await client.post(
            "/v1/chat/completions",
            json={**REQUEST, "stream": stream},
            headers={"Authorization": f"Bearer {secret}"},
        )
        # The release is awaited before the 5xx leaves: already closed here.
        [hold] = await holds_of(billing, key.account_id)
    assert reply.status_code == 502
    assert hold.status == "released" and hold.cost == 0
    assert reply.headers["x-sn19-cost"] == "0.000000"
    [record] = await usage_of(billing, key.account_id)
    assert record.status == "upstream_error" and record.cost == 0
    await verified(billing, key.account_id)


async def test_stream_failing_after_the_first_byte_pays_what_was_delivered(
    tmp_path: Path, billing: Billing, funded: Funded
) -> None:
    key, secret = await funded(CREDITS)
    events = chat_chunks(8)
    # The role chunk and three tokens arrive, then the miner drops the connection.
    answer = Canned(200, [b"".join(events[:4]), b"".join(events[4:])], drop_after=1)
    async with gateway_for(tmp_path, billing, answer) as client:
        reply = await client.post(
            "/v1/chat/completions",
            json={**REQUEST, "stream": True},
            headers={"Authorization": f"Bearer {secret}"},
        )
        [hold] = await settled(billing, key.account_id)
    assert b'"error"' in reply.content and b"[DONE]" not in reply.content
    [record] = await usage_of(billing, key.account_id)
    assert hold.status == "settled" and record.status == "upstream_error"
    assert record.output_tokens == 3 and 0 < hold.cost < hold.amount
    await verified(billing, key.account_id)


async def test_an_aggregated_answer_broken_half_way_is_not_charged(
    tmp_path: Path, billing: Billing, funded: Funded
) -> None:
    """A non-stream client received nothing of a miner's half answer: when no other miner can
    finish it, the request fails and the hold is released in full."""
    key, secret = await funded(CREDITS)
    events = chat_chunks(8)
    answer = Canned(200, [b"".join(events[:4]), b"".join(events[4:])], drop_after=1)
    async with gateway_for(tmp_path, billing, answer) as client:
        reply = await client.post(
            "/v1/chat/completions", json=REQUEST, headers={"Authorization": f"Bearer {secret}"}
        )
        [hold] = await holds_of(billing, key.account_id)
    assert reply.status_code == 502
    assert hold.status == "released" and hold.cost == 0
    [record] = await usage_of(billing, key.account_id)
    assert record.output_tokens == 0 and record.cost == 0
    await verified(billing, key.account_id)


async def test_client_that_leaves_mid_stream_pays_what_it_received(
    tmp_path: Path, billing: Billing, funded: Funded
) -> None:
    key, secret = await funded(CREDITS)
    events = chat_chunks(8)
    # One event per read, 0.2 s apart: the client leaves after the first token.
    answer = Canned(200, [*events, b"data: [DONE]\n\n"], delay_s=0.2)
    async with gateway_for(tmp_path, billing, answer) as client:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                client.url + "/v1/chat/completions",
                json={**REQUEST, "stream": True},
                headers={"Authorization": f"Bearer {secret}"},
            ) as response,
        ):
            assert response.status == 200
            async for line in response.content:
                if b'"content":"Hello"' in line:
                    break
        [hold] = await settled(billing, key.account_id)
    [record] = await usage_of(billing, key.account_id)
    assert hold.status == "settled" and record.status == "client_disconnected"
    assert 1 <= record.output_tokens < 8
    await verified(billing, key.account_id)


async def test_a_failed_settle_leaves_the_hold_to_the_sweeper(
    tmp_path: Path, billing: Billing, funded: Funded, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, secret = await funded(CREDITS)

    async def database_down(*args: Any, **kwargs: Any) -> Any:
        raise OSError("the database is down")

    monkeypatch.setattr(billing.service, "settle", database_down)
    async with gateway_for(tmp_path, billing, ok(4)) as client:
        reply = await client.post(
            "/v1/chat/completions", json=REQUEST, headers={"Authorization": f"Bearer {secret}"}
        )
        await billing.access.drain()
    assert reply.status_code == 200  # the customer got the answer
    [hold] = await holds_of(billing, key.account_id)
    assert hold.status == "open"
    monkeypatch.undo()
    later = utcnow() + timedelta(hours=1)
    assert await billing.service.sweep_expired_holds(now=later) >= 1
    [hold] = await holds_of(billing, key.account_id)
    assert hold.status == "expired" and hold.cost == 0  # not charged
    balance = await billing.accounts.balance(key.account_id)
    assert balance.available == CREDITS
    await verified(billing, key.account_id)
