"""Scoring test support: a local network file with real miners (instant engines on real ports,
gated by the same file), validator settings for the scoring loop, and an empty scoring schema."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from core.chain import LocalChain
from core.db import Database
from core.db.tables.scoring import (
    CheckResult,
    Contender,
    Node,
    NodeHistory,
    Period,
    WeightRun,
    WeightRunFactor,
    WeightRunWeight,
)
from core.settings import Settings
from core.wallet import load_signer
from protocol.catalog import resolve_catalog
from protocol.chainfile import Neuron, format_chain_file
from scoring.backoff import Backoff
from scoring.counters import ContenderCounters
from scoring.periods import PeriodManager
from scoring.routes import RouteStore
from scoring.sync import MetagraphSync
from tests.support.miner import miner_settings, serving
from tests.support.wallets import make_wallet

CHAT = "sn19-tiny-chat"
VALIDATOR_STAKE = 10_000.0


@dataclass
class LocalMiner:
    name: str
    hotkey: str
    url: str

    @property
    def axon(self) -> str:
        return self.url.removeprefix("http://")


def write_network(
    path: Path, *, validator: str, miners: list[tuple[str, str | None]], extra: list[Neuron] = ()
) -> None:
    """Validator first (uid 0), then the miners (hotkey, axon or None) in order."""
    neurons = [
        Neuron(uid=0, hotkey=validator, stake=VALIDATOR_STAKE, validator_permit=True),
        *(Neuron(uid=0, hotkey=hotkey, axon=axon) for hotkey, axon in miners),
        *extra,
    ]
    path.write_text(format_chain_file(neurons))


def validator_hotkey(wallet_root: Path) -> str:
    return str(make_wallet(wallet_root, "validator").hotkey.ss58_address)


@contextlib.asynccontextmanager
async def local_miners(
    wallet_root: Path,
    chain_file: Path,
    count: int,
    *,
    engines: Mapping[int, Any] | None = None,
    **fields: Any,
) -> AsyncIterator[list[LocalMiner]]:
    """``count`` instant-engine chat miners on real ports, registered in ``chain_file`` (which
    their stake gates read), with the validator of ``wallet_root`` as uid 0. ``engines``: the
    chat engine of some miners by index instead (the caller starts and closes it)."""
    from inference.instant import InstantTextEngine
    from miner_server import create_app

    miners: list[LocalMiner] = []
    async with contextlib.AsyncExitStack() as stack:
        for index in range(count):
            name = f"scoring-miner-{index}"
            hotkey = str(make_wallet(wallet_root, name).hotkey.ss58_address)
            settings = miner_settings(
                wallet_root,
                tasks=[CHAT],
                wallet={"name": name, "hotkey": "default", "path": str(wallet_root)},
                chain={"network": "local", "local_file": str(chain_file)},
                **fields,
            )
            url = f"http://127.0.0.1:{settings.port}"
            miners.append(LocalMiner(name, hotkey, url))
        write_network(
            chain_file,
            validator=validator_hotkey(wallet_root),
            miners=[(m.hotkey, m.axon) for m in miners],
        )
        for index, miner in enumerate(miners):
            settings = miner_settings(
                wallet_root,
                tasks=[CHAT],
                port=int(miner.url.rsplit(":", 1)[1]),
                wallet={"name": miner.name, "hotkey": "default", "path": str(wallet_root)},
                chain={"network": "local", "local_file": str(chain_file)},
                **fields,
            )
            engine = (engines or {}).get(index)
            app = create_app(settings, engines={CHAT: engine or InstantTextEngine(length=8)})
            await stack.enter_async_context(serving(app, settings))
        yield miners


def scoring_settings(
    tmp: Path,
    *,
    wallet_root: Path,
    db_url: str,
    redis_url: str,
    redis_prefix: str,
    chain_file: Path,
    period_s: float = 60.0,
    rate_limit: int = 1,
    **scoring: Any,
) -> Settings:
    make_wallet(wallet_root, "validator")
    return Settings.from_env(
        {},
        overrides={
            "data_dir": str(tmp),
            "catalog": "dev",
            "environment": "dev",
            "database": {"url": db_url},
            "redis": {"url": redis_url, "key_prefix": redis_prefix},
            "chain": {
                "network": "local",
                "local_file": str(chain_file),
                "local_block_time_s": 0.1,
                "local_weights_rate_limit": rate_limit,
                "retry_initial_s": 0.05,
                "retry_max_s": 0.2,
                "sync_interval_s": 3600,
            },
            "wallet": {"name": "validator", "hotkey": "default", "path": str(wallet_root)},
            "scoring": {
                "period_s": period_s,
                "capacity_timeout_s": 5,
                "leader_ttl_s": 2.0,
                "leader_poll_s": 0.2,
                "weights_check_s": 0.2,
                "empty_period_retry_s": 2.0,
                **scoring,
            },
        },
    )


async def clear_scoring_tables(db: Database) -> None:
    """Empty every scoring table (the session databases are shared by the tests)."""
    async with db.transaction() as session:
        for table in (
            WeightRunWeight,
            WeightRunFactor,
            WeightRun,
            Contender,
            Period,
            CheckResult,
            NodeHistory,
            Node,
        ):
            await session.execute(delete(table))


def period_manager(
    settings: Settings, db: Database, redis: Any, client: Any, name: str
) -> PeriodManager:
    chain = LocalChain(settings.chain_file, hotkey=load_signer(settings).hotkey, block_time_s=0.1)
    backoff = Backoff(initial_s=0.05, max_s=0.1)
    return PeriodManager(
        db=db,
        sync=MetagraphSync(db, chain, backoff=backoff),
        client=client,
        catalog=resolve_catalog("dev"),
        counters=ContenderCounters(redis, prefix=settings.redis.key_prefix, ttl_s=600),
        routes=RouteStore(redis, prefix=settings.redis.key_prefix),
        settings=settings,
        self_hotkey=load_signer(settings).hotkey,
        opened_by=name,
        backoff=Backoff(initial_s=0.05, max_s=0.1),
        rng=random.Random(3),
    )
