"""Gateways with billing on, as separate processes (``sn19 gateway --config``) sharing one
database and one Redis, in front of real miner servers served in the test's event loop.

- ``miner_routes``: start miner servers (``miner_server.create_app`` with injected engines) and
  publish their routes in Redis under the test's key prefix (every key under it is deleted at
  the end).
- ``gateway_config``: the TOML a gateway process reads (billing on, a test key-hash secret).
- ``GatewayProcess``: one ``sn19 gateway`` subprocess; ``kill()`` is ``kill -9``.
- ``funded_key``: an account with credits and a key on it (through ``billing``, like the CLI).
- ``ledger_verify``: runs ``sn19 ledger verify`` (the CLI) against the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from billing.components import open_billing
from core.redis import create_redis
from core.settings import Settings
from miner_server import create_app as create_miner
from scoring.routes import MinerRoute, RouteStore
from sn19.dev.layout import render_toml
from tests.support.miner import miner_settings, serving
from tests.support.net import free_port
from tests.support.wallets import make_wallet

ROOT = Path(__file__).resolve().parents[2]
KEY_HASH_SECRET = "gateway-billing-test-secret"
CHAT = "sn19-tiny-chat"


@contextlib.asynccontextmanager
async def miner_routes(
    wallet_root: Path,
    redis_url: str,
    prefix: str,
    miners: Mapping[str, Mapping[str, Any]],
    *,
    concurrency: int = 1024,
) -> AsyncIterator[list[MinerRoute]]:
    """Serve each miner (name → task → engine) and publish the routes; yields them."""
    routes: list[MinerRoute] = []
    async with contextlib.AsyncExitStack() as stack:
        for uid, (name, engines) in enumerate(miners.items(), start=1):
            wallet = make_wallet(wallet_root, name)
            settings = miner_settings(
                wallet_root,
                tasks=list(engines),
                wallet={"name": name, "hotkey": "default", "path": str(wallet_root)},
                task={task: {"concurrency": concurrency} for task in engines},
                log_level="WARNING",
            )
            url = await stack.enter_async_context(
                serving(create_miner(settings, engines=dict(engines)), settings)
            )
            routes.extend(
                MinerRoute(
                    task=task,
                    hotkey=wallet.hotkey.ss58_address,
                    uid=uid,
                    url=url,
                    concurrency=concurrency,
                    volume=1e9,
                    period_start=time.time(),
                )
                for task in engines
            )
        redis = create_redis(redis_url)
        stack.push_async_callback(redis.aclose)
        stack.push_async_callback(_forget, redis, prefix)
        store = RouteStore(redis, prefix=prefix)
        for task in {route.task for route in routes}:
            await store.publish(task, [r for r in routes if r.task == task], ttl_s=3600)
        yield routes


async def _forget(redis: Any, prefix: str) -> None:
    """Delete the test's keys (routes, key cache, rate-limit buckets)."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)


def settings_overrides(
    *,
    data_dir: Path,
    database_url: str,
    redis_url: str,
    prefix: str,
    wallet_root: Path,
    catalog: str = "dev",
    billing: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Sections of a billing-on gateway's settings ("" is the top level)."""
    make_wallet(wallet_root, "validator")
    return {
        "": {"data_dir": str(data_dir), "catalog": catalog, "environment": "production"},
        "database": {"url": database_url, "pool_size": 20},
        "redis": {"url": redis_url, "key_prefix": prefix},
        "wallet": {"name": "validator", "hotkey": "default", "path": str(wallet_root)},
        "gateway": {"host": "127.0.0.1", "cooldown_base_s": 0.05, **(gateway or {})},
        "billing": {"enabled": True, "key_hash_secret": KEY_HASH_SECRET, **(billing or {})},
        "telemetry": {"log_level": "WARNING"},
    }


def settings_of(sections: Mapping[str, Mapping[str, Any]]) -> Settings:
    overrides: dict[str, Any] = dict(sections.get("", {}))
    overrides.update({name: dict(values) for name, values in sections.items() if name})
    return Settings.from_env({}, overrides=overrides)


def gateway_config(path: Path, sections: Mapping[str, Mapping[str, Any]], port: int) -> Path:
    values = {name: dict(fields) for name, fields in sections.items()}
    values["gateway"]["port"] = port
    path.write_text(render_toml(values), "utf-8")
    return path


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SN19")}


class GatewayProcess:
    """``python -m sn19 gateway --config CONFIG`` on its own port."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sn19", "gateway", "--config", str(config)],
                cwd=ROOT,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited:\n{self.log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.url} not ready after {timeout}s")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no settles, holds left open."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.asynccontextmanager
async def gateway_processes(
    work: Path, sections: Mapping[str, Mapping[str, Any]], count: int
) -> AsyncIterator[list[GatewayProcess]]:
    """``count`` gateway processes with the same settings (each on its own port)."""
    gateways: list[GatewayProcess] = []
    try:
        for index in range(count):
            port = free_port()
            config = gateway_config(work / f"gateway-{index}.toml", sections, port)
            gateways.append(GatewayProcess(config, port, work / f"gateway-{index}.log"))
        await asyncio.gather(*(gateway.ready() for gateway in gateways))
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()


async def funded_key(
    settings: Settings, micro_credits: int, **key_fields: Any
) -> tuple[int, int, str]:
    """A new account holding ``micro_credits`` and a key on it: (account id, key id, secret)."""
    async with open_billing(settings) as billing:
        account = await billing.accounts.create(f"gw-{uuid.uuid4().hex[:10]}")
        if micro_credits:
            await billing.accounts.grant(account.id, micro_credits, actor="test", reason="test")
        key_fields.setdefault("rpm_limit", None)
        key_fields.setdefault("tpm_limit", None)
        created = await billing.keys.create(account.id, "gateway test", **key_fields)
        return account.id, created.key.id, created.secret


def ledger_verify(database_url: str, *accounts: int) -> subprocess.CompletedProcess[str]:
    """``sn19 ledger verify`` (the CLI, in its own process) on ``database_url``."""
    argv = [sys.executable, "-m", "sn19", "ledger", "verify"]
    for account in accounts:
        argv += ["--account", str(account)]
    env = {
        **clean_env(),
        "SN19_DATABASE__URL": database_url,
        "SN19_BILLING__KEY_HASH_SECRET": KEY_HASH_SECRET,
    }
    return subprocess.run(
        argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
