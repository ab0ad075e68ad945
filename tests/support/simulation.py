"""A local subnet to watch the validator loop work: real miners, real checker, real weights.

Six miners on real ports (btauth/1, stake gate on the local chain file), all serving the dev
catalog's tiny chat model (with short outputs so it runs on two cores): two honest and fast,
one honest but slow (slower first token and 40 ms per token), one failing 30 % of its requests
(HTTP 500), one rate-limiting half of them (429), and one cheating (random tokens with plausible
logprobs, ``tests.support.cheats.RandomTokensEngine``). ``scoring.process.run`` (the real
synthetic sender) drives them for several short periods while a real ``sn19 checker``
subprocess checks the results; the weights are what the local chain recorded. A second phase
sends organic traffic through the real gateway (routes from the scoring leader) and counts who
served it. ``tests/integration/scoring/test_simulation.py`` asserts on the result;
``benchmarks/scoring_simulation.py`` prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from core.chain import LocalChain
from core.db import Database
from core.db.tables.scoring import Contender, Period
from core.settings import Settings
from tests.support.db import create_sqlite_database, run_in_thread
from tests.support.miner import miner_settings, serving
from tests.support.scoring import write_network
from tests.support.simulation_miners import BEHAVIOURS, Behaviour, Refusing, SlowEngine
from tests.support.wallets import make_wallet

ROOT = Path(__file__).resolve().parents[2]
TASK = "sn19-tiny-chat"
API_KEY = "sk-simulation-0123456789abcdef"

# The dev catalog's tiny chat task with short outputs and a small volume per request, so that a
# period of a few seconds holds several synthetic requests per miner on a CPU.
CATALOG = """\
name = "simulation"

[[task]]
id = "sn19-tiny-chat"
kind = "chat"
engine = { type = "transformers", model = "builtin:tiny-llama", dtype = "float32" }
max_capacity = 2000
volume_per_request = 30
weight = 1.0
timeouts = { first_token_s = 20.0, idle_s = 20.0, total_s = 60.0 }
text = { context_length = 2048, max_output_tokens = 32, tokenizer = "builtin:bytes", max_n = 1 }
"""


@dataclass
class MinerRow:
    behaviour: Behaviour
    hotkey: str
    uid: int = -1
    weight: float = 0.0
    weight_u16: int = 0
    quality: float | None = None
    speed: float | None = None
    speed_bonus: float = 0.0
    period_scores: list[float | None] = field(default_factory=list)
    checks: int = 0
    synthetic: int = 0
    failed: int = 0
    rate_limited: int = 0
    organic: int = 0

    @property
    def name(self) -> str:
        return self.behaviour.name


@dataclass
class SimulationResult:
    rows: list[MinerRow]
    periods: int
    organic_total: int = 0
    elapsed_s: float = 0.0

    def row(self, name: str) -> MinerRow:
        return next(row for row in self.rows if row.name == name)

    def organic_share(self, name: str) -> float:
        return self.row(name).organic / self.organic_total if self.organic_total else 0.0

    def table(self) -> str:
        lines = [
            "| miner | behaviour | weight | period scores (oldest→newest) | quality | speed "
            "(tok/s, bonus) | checks | synthetic (failed, 429) | organic served | organic share |",
            "|---|---|---:|---|---:|---|---:|---|---:|---:|",
        ]
        for row in self.rows:
            scores = " ".join("-" if s is None else f"{s:.2f}" for s in row.period_scores)
            quality = "-" if row.quality is None else f"{row.quality:.3f}"
            speed = "-" if row.speed is None else f"{row.speed:.1f}, {row.speed_bonus:+.2f}"
            lines.append(
                f"| {row.name} | {row.behaviour.description} | {row.weight:.4f} | {scores} | "
                f"{quality} | {speed} | {row.checks} | {row.synthetic} ({row.failed}, "
                f"{row.rate_limited}) | {row.organic} | {self.organic_share(row.name):.0%} |"
            )
        return "\n".join(lines)


def settings_for(
    root: Path, *, db_url: str, redis_url: str, prefix: str, period_s: float
) -> Settings:
    catalog = root / "catalog.toml"
    return Settings.from_env(
        {},
        overrides={
            "data_dir": str(root / "validator"),
            "catalog": str(catalog),
            "environment": "dev",
            "database": {"url": db_url},
            "redis": {"url": redis_url, "key_prefix": prefix},
            "chain": {
                "network": "local",
                "local_file": str(root / "chain.txt"),
                "local_block_time_s": 0.1,
                "local_weights_rate_limit": 1,
                "retry_initial_s": 0.05,
                "retry_max_s": 0.2,
                "sync_interval_s": 3600,
            },
            "wallet": {"name": "validator", "hotkey": "default", "path": str(root / "wallets")},
            "gateway": {"api_keys": [API_KEY], "cooldown_base_s": 0.5, "cooldown_max_s": 5.0},
            "checker": {"organic_sample_rate": 0.0, "block_ms": 200, "threads": 1},
            "scoring": {
                "period_s": period_s,
                "capacity_timeout_s": 5,
                "routes_refresh_s": 1.0,
                "leader_ttl_s": 3.0,
                "leader_poll_s": 0.2,
                "weights_check_s": 0.5,
                "empty_period_retry_s": 2.0,
                "synthetic_defer_s": 5.0,
                # Twice the quotas: several requests per miner and period, so one period's
                # luck weighs less.
                "quota_scale": 2.0,
            },
        },
    )


@contextlib.asynccontextmanager
async def _miners(root: Path, settings: Settings) -> AsyncIterator[list[MinerRow]]:
    from inference.registry import load_engine
    from miner_server import create_app
    from protocol.catalog import resolve_catalog
    from tests.support.cheats import RandomTokensEngine

    wallets = root / "wallets"
    task = resolve_catalog(settings.catalog).get(TASK)
    assert task is not None
    honest = load_engine(task, None)
    cheat = RandomTokensEngine()
    await honest.start()
    await cheat.start()
    rows: list[MinerRow] = []
    configs = []
    for behaviour in BEHAVIOURS:
        name = f"sim-{behaviour.name}"
        hotkey = str(make_wallet(wallets, name).hotkey.ss58_address)
        config = miner_settings(
            wallets,
            catalog=settings.catalog,
            tasks=[TASK],
            wallet={"name": name, "hotkey": "default", "path": str(wallets)},
            chain={"network": "local", "local_file": settings.chain.local_file},
        )
        rows.append(MinerRow(behaviour, hotkey))
        configs.append(config)
    write_network(
        Path(settings.chain.local_file),
        validator=str(make_wallet(wallets, "validator").hotkey.ss58_address),
        miners=[(row.hotkey, f"127.0.0.1:{config.port}") for row, config in zip(rows, configs)],
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            for row, config in zip(rows, configs, strict=True):
                engine: Any = honest
                if row.behaviour.cheat:
                    engine = cheat
                elif row.behaviour.slow:
                    engine = SlowEngine(honest)
                app: Any = create_app(config, engines={TASK: engine})
                if row.behaviour.refuse is not None:
                    app = Refusing(app, row.behaviour.refuse)
                await stack.enter_async_context(serving(app, config))
            yield rows
    finally:
        await honest.close()
        await cheat.close()


@contextlib.asynccontextmanager
async def _checker(root: Path, settings: Settings) -> AsyncIterator[None]:
    """A real `sn19 checker` process (the other CPU core) over the same Redis and database."""
    config = root / "checker.toml"
    config.write_text(
        f'catalog = "{settings.catalog}"\ndata_dir = "{root / "checker"}"\n'
        f'[database]\nurl = "{settings.database_url}"\n'
        f'[redis]\nurl = "{settings.redis.url}"\nkey_prefix = "{settings.redis.key_prefix}"\n'
        "[checker]\nbatch_size = 8\nblock_ms = 200\nthreads = 1\n",
        "utf-8",
    )
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "sn19", "checker", "--config", str(config)],
        stdout=(root / "checker.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()


async def _closed_periods(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Period).where(Period.closed_at.is_not(None))
        )
    return int(count or 0)


async def _wait(condition: Callable[[], Any], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"simulation: {what} not reached in {timeout:.0f}s")
        await asyncio.sleep(0.25)


async def _organic(url: str, requests: int, concurrency: int) -> list[str]:
    """Send ``requests`` chat requests through the gateway; the request ids that succeeded."""
    done: list[str] = []
    queue = list(range(requests))
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            index = queue.pop()
            payload = {
                "model": TASK,
                "messages": [{"role": "user", "content": f"Tell me about rivers, part {index}."}],
                "max_tokens": 24,
                "temperature": 0.8,
            }
            async with session.post(f"{url}/v1/chat/completions", json=payload) as response:
                await response.read()
                if response.status == 200:
                    done.append(response.headers.get("x-request-id", str(index)))

    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return done


async def _collect(result: SimulationResult, db: Database, settings: Settings) -> None:
    from scoring.weights.runs import load_run

    run = await load_run(db)
    assert run is not None, "no weight calculation was stored"
    chain = LocalChain(Path(settings.chain.local_file))
    history = chain.weight_history()
    assert history, "the local chain recorded no weights"
    last = history[-1]
    total = sum(last.weights) or 1
    by_uid = dict(zip(last.uids, last.weights, strict=True))
    factors = {factor.hotkey: (uid, factor) for uid, factor in run.factors}
    async with db.read() as session:
        rows = (await session.execute(select(Contender).where(Contender.closed))).scalars().all()
    for row in result.rows:
        uid, factor = factors.get(row.hotkey, (None, None))
        row.uid = uid if uid is not None else -1
        row.weight_u16 = by_uid.get(row.uid, 0)
        row.weight = row.weight_u16 / total
        if factor is not None:
            row.quality = factor.quality
            row.speed = factor.speed_metric
            row.speed_bonus = factor.speed_bonus
            row.checks = factor.check_count
            row.period_scores = [entry.score for entry in reversed(factor.history)]
        mine = [c for c in rows if c.hotkey == row.hotkey]
        row.synthetic = sum(c.synthetic_requests for c in mine)
        row.failed = sum(c.failed for c in mine)
        row.rate_limited = sum(c.rate_limited for c in mine)


async def run_simulation(
    root: Path,
    *,
    redis_url: str,
    periods: int = 5,
    period_s: float = 12.0,
    organic_requests: int = 60,
) -> SimulationResult:
    """Synthetic traffic for ``periods`` closed periods, then (``organic_requests`` > 0)
    organic traffic through the gateway. Needs Redis; the database is a fresh SQLite file."""
    from gateway import create_app
    from gateway.hooks import CompletedRequest, CompletionHub
    from scoring.process import run
    from tests.support.serving import serve_app

    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalog.toml").write_text(CATALOG, "utf-8")
    db_url = run_in_thread(create_sqlite_database, root)
    prefix = f"sn19sim:{uuid.uuid4().hex[:8]}:"
    settings = settings_for(
        root, db_url=db_url, redis_url=redis_url, prefix=prefix, period_s=period_s
    )
    make_wallet(root / "wallets", "validator")
    db = Database.from_url(db_url)
    stop = asyncio.Event()
    try:
        async with _miners(root, settings) as rows, _checker(root, settings):
            result = SimulationResult(rows, periods)
            scoring = asyncio.ensure_future(run(settings, stop=stop))

            async def closed() -> bool:
                if scoring.done():
                    scoring.result()
                return await _closed_periods(db) >= periods

            await _wait(closed, timeout=periods * period_s * 3 + 120, what=f"{periods} periods")
            await asyncio.sleep(2.0)  # the weight setter's next run sees the closed period
            await _collect(result, db, settings)
            if organic_requests > 0:
                served: dict[str, int] = {}

                async def count(item: CompletedRequest) -> None:
                    if item.outcome == "ok":
                        served[item.miner.hotkey] = served.get(item.miner.hotkey, 0) + 1

                hub = CompletionHub()
                hub.subscribe(count)
                app = create_app(settings, hooks=hub)
                async with serve_app(app) as url:
                    await _organic(url, organic_requests, concurrency=3)
                    await asyncio.sleep(0.5)
                for row in rows:
                    row.organic = served.get(row.hotkey, 0)
                result.organic_total = sum(served.values())
            stop.set()
            await asyncio.wait_for(scoring, 30)
    finally:
        stop.set()
        await db.dispose()
    result.elapsed_s = time.monotonic() - started
    return result
