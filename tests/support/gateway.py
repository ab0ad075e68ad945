"""A gateway app wired to in-memory miners (``FakeMinerClient``) for unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from core.miners import InProcessStats
from core.settings import Settings
from gateway import create_app
from gateway.hooks import CompletionHub
from protocol.catalog import Catalog, resolve_catalog
from scoring.routes import MinerRoute
from tests.support.fake_miner import Canned, FakeMinerClient

API_KEY = "sk-test-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT = "sn19-tiny-chat"
IMAGE = "sn19-tiny-diffusion"
EMBED = "all-minilm-l6-v2"


class StaticRoutes:
    """A ``RouteSource`` over a fixed list (what scoring would publish)."""

    def __init__(self, routes: list[MinerRoute]) -> None:
        self.routes_list = routes

    async def routes(self, task: str) -> list[MinerRoute]:
        return [route for route in self.routes_list if route.task == task]


class FakeRedis:
    """The few Redis calls a gateway makes outside its injected parts (health, the slot
    queue's waiting flag), in memory."""

    def __init__(self, alive: bool = True) -> None:
        self.alive = alive
        self.values: dict[str, bytes] = {}

    async def ping(self) -> bool:
        if not self.alive:
            raise ConnectionError("down")
        return True

    async def set(self, key: str, value: bytes, px: int | None = None) -> bool:
        self.values[key] = value
        return True

    async def delete(self, *keys: str) -> int:
        return sum(self.values.pop(key, None) is not None for key in keys)

    async def exists(self, key: str) -> int:
        return int(key in self.values)


def route(task: str, uid: int, *, concurrency: int = 8, quality: float = 1.0) -> MinerRoute:
    return MinerRoute(
        task=task,
        hotkey=f"5Miner{uid:02d}" + "x" * 40,
        uid=uid,
        url=f"http://miner-{uid}.test",
        concurrency=concurrency,
        volume=1e6,
        period_start=0.0,
        quality=quality,
    )


def all_routes(count: int = 3) -> list[MinerRoute]:
    return [route(task, uid) for task in (CHAT, IMAGE, EMBED) for uid in range(1, count + 1)]


def with_timeouts(task_id: str, **timeouts: float) -> Catalog:
    """The dev catalog with one task's timeouts changed."""
    catalog = resolve_catalog("dev")
    tasks = tuple(
        msgspec.structs.replace(task, timeouts=msgspec.structs.replace(task.timeouts, **timeouts))
        if task.id == task_id
        else task
        for task in catalog.tasks
    )
    return Catalog(name=catalog.name, tasks=tasks)


def settings_for(tmp: Path, **gateway: Any) -> Settings:
    return Settings.from_env(
        {},
        overrides={
            "data_dir": str(tmp),
            "gateway": {"api_keys": [API_KEY], "cooldown_base_s": 0.05, **gateway},
        },
    )


class Harness:
    def __init__(
        self,
        client: AsyncTestClient,
        miners: FakeMinerClient,
        app: Any,
        stats: InProcessStats,
        hooks: CompletionHub,
    ) -> None:
        self.client = client
        self.miners = miners
        self.app = app
        self.stats = stats
        self.hooks = hooks

    async def post(self, path: str, payload: Any = None, **kwargs: Any) -> Any:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        if isinstance(payload, bytes):
            return await self.client.post(path, content=payload, headers=headers, **kwargs)
        return await self.client.post(path, json=payload, headers=headers, **kwargs)


@contextlib.asynccontextmanager
async def gateway(
    tmp: Path,
    behaviour: Callable[[str, str, bytes], Canned],
    *,
    routes: list[MinerRoute] | None = None,
    span_exporter: Any = None,
    catalog: Catalog | None = None,
    **gateway_settings: Any,
) -> AsyncIterator[Harness]:
    miners = FakeMinerClient(behaviour)
    stats = InProcessStats(cooldown_base_s=0.05, cooldown_max_s=1.0)
    hooks = CompletionHub()
    app = create_app(
        settings_for(tmp, **gateway_settings),
        redis=FakeRedis(),
        routes=StaticRoutes(routes if routes is not None else all_routes()),
        miner_client=miners,
        stats=stats,
        hooks=hooks,
        span_exporter=span_exporter,
        catalog=catalog,
    )
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        yield Harness(client, miners, app, stats, hooks)


class Reply:
    """What ``Served.post`` got back (the parts of an httpx response the tests read)."""

    def __init__(self, status: int, headers: Any, content: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return msgspec.json.decode(self.content)

    @property
    def text(self) -> str:
        return self.content.decode()


class Served:
    """The gateway on a real port, for tests of concurrent requests (the in-process test
    client handles one request at a time)."""

    def __init__(self, url: str, session: Any, miners: FakeMinerClient, stats: Any) -> None:
        self.url = url
        self.session = session
        self.miners = miners
        self.stats = stats

    async def post(
        self, path: str, payload: Any, *, headers: dict[str, str] | None = None
    ) -> Reply:
        async with self.session.post(
            self.url + path, json=payload, headers={**AUTH, **(headers or {})}
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def get(self, path: str) -> Reply:
        async with self.session.get(self.url + path) as response:
            return Reply(response.status, response.headers, await response.read())


@contextlib.asynccontextmanager
async def served(
    tmp: Path,
    behaviour: Callable[[str, str, bytes], Canned],
    *,
    routes: list[MinerRoute] | None = None,
    **gateway_settings: Any,
) -> AsyncIterator[Served]:
    import aiohttp

    from tests.support.serving import serve_app

    miners = FakeMinerClient(behaviour)
    stats = InProcessStats(cooldown_base_s=0.05, cooldown_max_s=1.0)
    app = create_app(
        settings_for(tmp, **gateway_settings),
        redis=FakeRedis(),
        routes=StaticRoutes(routes if routes is not None else all_routes()),
        miner_client=miners,
        stats=stats,
        hooks=CompletionHub(),
    )
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        yield Served(url, session, miners, stats)
