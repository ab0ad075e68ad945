"""Two gateway replicas sharing one Redis: a miner one replica cooled down, or filled to its
announced concurrency, is not picked by the other (the live stats are shared by default)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.miners import SharedStats
from core.settings import Settings
from gateway import create_app
from gateway.state import Gateway
from scoring.routes import MinerRoute
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import CHAT, StaticRoutes, route
from tests.support.miner_streams import chat_chunks, stream_body
from tests.support.redis_fixtures import (  # noqa: F401 - fixtures
    REDIS_URL,
    fixture_redis_client,
    fixture_redis_prefix,
)
from tests.support.serving import serve_app

pytestmark = pytest.mark.redis

API_KEY = "sk-replicas-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT_REQUEST = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}
OK = stream_body(chat_chunks(3))


class Reply:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class Replica:
    """One gateway served in the test's event loop (so it can share the test's Redis client)."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, miners: FakeMinerClient, app: Any
    ) -> None:
        self.session = session
        self.url = url
        self.miners = miners
        self.app = app

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    @property
    def stats(self) -> SharedStats:
        stats = self.gateway.stats
        assert isinstance(stats, SharedStats)  # the default when nothing is injected
        return stats

    async def chat(self) -> Reply:
        async with self.session.post(
            self.url + "/v1/chat/completions", json=CHAT_REQUEST, headers=AUTH
        ) as response:
            await response.read()
            return Reply(response.status)


@contextlib.asynccontextmanager
async def replica(
    tmp: Path,
    redis: Any,
    prefix: str,
    routes: list[MinerRoute],
    behaviour: Callable[[str, str, bytes], Canned],
) -> AsyncIterator[Replica]:
    settings = Settings.from_env(
        {},
        overrides={
            "data_dir": str(tmp),
            "redis": {"url": REDIS_URL, "key_prefix": prefix},
            "gateway": {
                "api_keys": [API_KEY],
                "cooldown_base_s": 60.0,
                "cooldown_max_s": 120.0,
                "stats_sync_s": 0.05,
            },
            "checker": {"organic_sample_rate": 0.0},
        },
    )
    miners = FakeMinerClient(behaviour)
    app = create_app(settings, redis=redis, routes=StaticRoutes(routes), miner_client=miners)
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        yield Replica(session, url, miners, app)


async def synced(*replicas: Replica) -> None:
    """Each replica publishes, then each merges the others' numbers (as the loops do)."""
    for item in replicas:
        await item.stats.sync()
    for item in replicas:
        await item.stats.sync()


async def test_a_miner_cooled_down_by_one_replica_is_avoided_by_the_other(
    tmp_path: Path, redis_client, redis_prefix
) -> None:
    m1, m2 = route(CHAT, 1), route(CHAT, 2)

    def broken_m1(url: str, path: str, body: bytes) -> Canned:
        return Canned(503) if url == m1.url else Canned(200, OK)

    async with (
        replica(tmp_path / "a", redis_client, redis_prefix, [m1], broken_m1) as a,
        replica(
            tmp_path / "b", redis_client, redis_prefix, [m1, m2], lambda *_: Canned(200, OK)
        ) as b,
    ):
        failed = await a.chat()
        assert failed.status_code >= 500
        assert not a.stats.available((CHAT, m1.hotkey), time.monotonic())
        await synced(a, b)
        assert not b.stats.local.snapshot((CHAT, m1.hotkey)).requests  # b never asked m1
        for _ in range(12):
            assert (await b.chat()).status_code == 200
        assert {url for url, _, _ in b.miners.calls} == {m2.url}


async def test_in_flight_on_one_replica_counts_against_the_concurrency_on_the_other(
    tmp_path: Path, redis_client, redis_prefix
) -> None:
    m1, m2 = route(CHAT, 1, concurrency=1), route(CHAT, 2, concurrency=8)
    gate = asyncio.Event()

    def held(url: str, path: str, body: bytes) -> Canned:
        return Canned(200, stream_body(chat_chunks(3), pieces=3), gate=gate)

    async with (
        replica(tmp_path / "a", redis_client, redis_prefix, [m1], held) as a,
        replica(
            tmp_path / "b", redis_client, redis_prefix, [m1, m2], lambda *_: Canned(200, OK)
        ) as b,
    ):
        key = (CHAT, m1.hotkey)
        pending = asyncio.ensure_future(a.chat())
        for _ in range(500):
            if a.stats.local.snapshot(key).in_flight == 1:
                break
            await asyncio.sleep(0.01)
        assert a.stats.local.snapshot(key).in_flight == 1
        await synced(a, b)
        assert b.stats.snapshot(key).in_flight == 1  # a's request, counted on b
        assert [r.uid for r in b.gateway.selector.available([m1, m2], time.monotonic())] == [2]
        for _ in range(8):
            assert (await b.chat()).status_code == 200
        assert {url for url, _, _ in b.miners.calls} == {m2.url}

        gate.set()
        assert (await pending).status_code == 200
        await synced(a, b)
        assert b.stats.snapshot(key).in_flight == 0
        available = b.gateway.selector.available([m1, m2], time.monotonic())
        assert sorted(r.uid for r in available) == [1, 2]
