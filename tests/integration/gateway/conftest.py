"""A whole validator front on real ports: miner servers (``miner_server.create_app``) with
injected engines, an embedded Redis holding the routes (``RouteStore``), and the gateway served
by granian, all signing and verifying real sr25519 btauth/1 signatures.

``fast_stack`` runs three ways: billing off (a static key), billing on with the key ``sn19 dev``
creates (``billing.dev.prepare_dev_billing``) on SQLite, and the same on PostgreSQL."""

from __future__ import annotations

import collections
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest

from core.redis import EmbeddedRedis, create_redis
from core.settings import Settings
from gateway import create_app
from inference.instant import InstantTextEngine
from miner_server import create_app as create_miner
from scoring.routes import MinerRoute, RouteStore
from tests.support.db import (  # noqa: F401 - fixtures, registered by being imported here
    create_sqlite_database,
    fixture_postgres_url,
    run_in_thread,
)
from tests.support.fake_engines import FakeEmbeddingEngine, FakeImageEngine
from tests.support.miner import miner_settings, serving
from tests.support.serving import serve_app
from tests.support.wallets import make_wallet

API_KEY = "sk-integration-0123456789"
CHAT, IMAGE, EMBED = "sn19-tiny-chat", "sn19-tiny-diffusion", "all-minilm-l6-v2"


def fast_engines() -> dict[str, Any]:
    return {
        CHAT: InstantTextEngine(length=16),
        IMAGE: FakeImageEngine(),
        EMBED: FakeEmbeddingEngine(dimensions=384),
    }


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    yield url
    server.stop()


class CountingApp:
    """The gateway app, counting the HTTP requests it receives per path (server side)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.counts[scope["path"]] += 1
        await self.app(scope, receive, send)


class Stack:
    """Running miners and gateway; ``client`` is the official SDK pointed at the gateway."""

    def __init__(
        self,
        gateway_url: str,
        miners: dict[str, str],
        routes: list[MinerRoute],
        stops: dict[str, contextlib.AsyncExitStack],
        *,
        api_key: str = API_KEY,
        settings: Settings | None = None,
        counts: collections.Counter[str] | None = None,
    ) -> None:
        self.gateway_url = gateway_url
        self.miners = miners
        self.routes = routes
        self.stops = stops
        self.api_key = api_key
        self.settings = settings
        self.counts: collections.Counter[str] = (
            counts if counts is not None else collections.Counter()
        )
        self.client = self.sdk(api_key)

    def sdk(self, api_key: str, **options: Any) -> openai.AsyncOpenAI:
        options = {"max_retries": 0, "timeout": 60, **options}
        return openai.AsyncOpenAI(base_url=self.gateway_url + "/v1", api_key=api_key, **options)

    @property
    def billing(self) -> bool:
        return self.settings is not None and self.settings.billing.enabled

    async def stop_miner(self, name: str) -> None:
        await self.stops.pop(name).aclose()


@contextlib.asynccontextmanager
async def stack(
    wallet_root: Path,
    redis_url: str,
    *,
    miners: Mapping[str, Mapping[str, Any] | list[str]],
    server: str = "granian",
    billing_db: str | None = None,
    billing: Mapping[str, Any] | None = None,
    **gateway: Any,
) -> AsyncIterator[Stack]:
    """``miners``: name → engines (task → engine) for each miner to run, or a list of task ids
    for a miner that loads the catalog's real engines. ``billing_db``: a database URL to run
    with billing on (``billing``: extra billing settings); the stack's key is then created as
    ``sn19 dev`` creates its key."""
    prefix = f"sn19test:{uuid.uuid4().hex[:8]}:"
    redis = create_redis(redis_url)
    urls: dict[str, str] = {}
    stops: dict[str, contextlib.AsyncExitStack] = {}
    routes: list[MinerRoute] = []
    async with contextlib.AsyncExitStack() as outer:
        outer.push_async_callback(redis.aclose)
        for uid, (name, engines) in enumerate(miners.items(), start=1):
            wallet = make_wallet(wallet_root, name)
            real = isinstance(engines, list)
            settings = miner_settings(
                wallet_root,
                tasks=list(engines),
                wallet={"name": name, "hotkey": "default", "path": str(wallet_root)},
                **({"device": "cpu"} if real else {}),
            )
            app = create_miner(settings, engines=None if real else dict(engines))
            miner_stack = contextlib.AsyncExitStack()
            urls[name] = await miner_stack.enter_async_context(serving(app, settings))
            stops[name] = miner_stack
            routes.extend(
                MinerRoute(
                    task=task,
                    hotkey=wallet.hotkey.ss58_address,
                    uid=uid,
                    url=urls[name],
                    concurrency=16,
                    volume=1e6,
                    period_start=0.0,
                )
                for task in engines
            )
        store = RouteStore(redis, prefix=prefix)
        for task in {route.task for route in routes}:
            await store.publish(task, [r for r in routes if r.task == task], ttl_s=600)
        make_wallet(wallet_root, "validator")
        overrides: dict[str, Any] = {
            "data_dir": str(wallet_root / "gw"),
            "redis": {"url": redis_url, "key_prefix": prefix},
            "wallet": {"name": "validator", "hotkey": "default", "path": str(wallet_root)},
            "gateway": {"api_keys": [API_KEY], "cooldown_base_s": 0.5, **gateway},
        }
        if billing_db is not None:
            overrides["environment"] = "dev"  # the built-in dev key-hash secret, as sn19 dev
            overrides["database"] = {"url": billing_db}
            overrides["billing"] = {"enabled": True, **(billing or {})}
        settings = Settings.from_env({}, overrides=overrides)
        api_key = API_KEY
        if billing_db is not None:
            from billing.dev import prepare_dev_billing

            api_key = run_in_thread(lambda: prepare_dev_billing(settings, credits=1_000))
        app = CountingApp(create_app(settings))
        url = await outer.enter_async_context(serve_app(app, server=server))
        try:
            yield Stack(
                url, urls, routes, stops, api_key=api_key, settings=settings, counts=app.counts
            )
        finally:
            for miner_stack in list(stops.values()):
                await miner_stack.aclose()


BILLING_MODES = ["static", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def billing_database(request: pytest.FixtureRequest, mode: str, tmp: Path) -> str | None:
    """None (billing off), a fresh SQLite file, or the session's PostgreSQL database."""
    if mode == "static":
        return None
    if mode == "sqlite":
        return str(run_in_thread(create_sqlite_database, tmp))
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module", params=BILLING_MODES)
async def fast_stack(
    request: pytest.FixtureRequest,
    wallet_root: Path,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    database = billing_database(request, request.param, tmp_path_factory.mktemp("db"))
    async with stack(
        wallet_root,
        redis_url,
        miners={f"m{i}": fast_engines() for i in range(1, 4)},
        billing_db=database,
    ) as running:
        yield running
