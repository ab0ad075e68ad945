"""Seeding the validator loop's state for the dashboard's miner pages, with scoring's own
writers: the metagraph (``apply_metagraph``), periods and contenders (``store.rotate``, closing
each with its counters), check results, a weight run computed and stored by ``WeightSetter``
(then marked set, as the chain would), and the live state in Redis (routes of the open period,
its counters). Used by the read API's tests, the Playwright test and the benchmark.

Miners ``i`` (uid ``i``) are of three kinds: every 7th (from 3) is flaky (429s, failures, a
third of its checks score 0), every 11th (from 5) has no axon (registered, not serving, no
contender), the others are healthy with speeds spread over a factor of three.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from core.chain import LocalChain, Metagraph
from core.db import Database
from core.db.tables.scoring import CheckResult
from core.settings import Settings
from protocol.catalog import Catalog
from protocol.chainfile import Neuron
from scoring import store
from scoring.backoff import Backoff
from scoring.contenders import ContenderPlan, PeriodView, routes_for
from scoring.counters import ContenderCounters, Counts
from scoring.onchain import WeightSetter
from scoring.routes import RouteStore
from scoring.sync import apply_metagraph
from scoring.weights.runs import finish_run

VALIDATOR = "5Validator" + "v" * 38
NETUID = 19


def hotkey(index: int) -> str:
    return f"5Miner{index:03d}" + "x" * 39


def flaky(index: int) -> bool:
    return index % 7 == 3


def idle(index: int) -> bool:
    return index % 11 == 5


def neurons(miners: int) -> list[Neuron]:
    found = [Neuron(0, VALIDATOR, coldkey="5Cold0", stake=50_000.0, validator_permit=True)]
    for index in range(1, miners + 1):
        found.append(
            Neuron(
                index,
                hotkey(index),
                coldkey=f"5Cold{index % 9}",
                stake=100.0 + index,
                axon=None if idle(index) else f"10.0.{index // 250}.{index % 250}:8091",
            )
        )
    return found


async def seed_metagraph(db: Database, miners: int, *, block: int = 4_000_000) -> list[Neuron]:
    found = neurons(miners)
    async with db.transaction() as session:
        await apply_metagraph(session, Metagraph(NETUID, block, tuple(found)))
    return found


def plans(found: Sequence[Neuron], catalog: Catalog, rng: random.Random) -> list[ContenderPlan]:
    made = []
    for neuron in found:
        if neuron.axon_url is None or neuron.validator_permit:
            continue
        for task in catalog.enabled():
            announced = task.max_capacity * rng.uniform(0.2, 1.3)
            capacity = min(announced, task.max_capacity)
            made.append(
                ContenderPlan(
                    task.id,
                    neuron.hotkey,
                    neuron.uid,
                    neuron.axon_url,
                    announced,
                    capacity,
                    rng.choice((2, 4, 8)),
                    0.04,
                    capacity * 0.04,
                )  # fmt: skip
            )
    return made


def counts(plan: ContenderPlan, rng: random.Random) -> Counts:
    requests = rng.randint(20, 60)
    bad = flaky(plan.uid)
    rate_limited = rng.randint(1, 6) if bad else int(rng.random() < 0.1)
    failed = rng.randint(2, 10) if bad else int(rng.random() < 0.1)
    share = (requests - rate_limited - failed) / requests
    return Counts(
        consumed=plan.quota * rng.uniform(0.6, 1.4) * share,
        requests=requests,
        rate_limited=rate_limited,
        failed=failed,
    )


async def seed_periods(
    db: Database, made: list[ContenderPlan], *, periods: int, rng: random.Random, period_s: float
) -> PeriodView:
    """``periods`` closed periods ending now, and the open one."""
    start = datetime.now(UTC).timestamp() - periods * period_s - period_s / 3
    current = None
    for index in range(periods + 1):
        closing = {(p.task, p.hotkey): counts(p, rng) for p in made} if current else {}
        opened = await store.rotate(
            db,
            closing=current,
            counts=closing,
            plans=made,
            now=start + index * period_s,
            period_s=period_s,
            seed=index,
            opened_by="seed",
            block=4_000_000 + index * 150,
        )
        assert opened is not None
        current = opened
    assert current is not None
    return current


def check_rows(
    made: Sequence[ContenderPlan], total: int, rng: random.Random, *, window_s: float
) -> Iterator[dict[str, Any]]:
    """``total`` check results over the last ``window_s`` seconds, spread over the contenders,
    oldest first (as the checker stores them)."""
    start = datetime.now(UTC) - timedelta(seconds=window_s)
    for index in range(total):
        plan = made[index % len(made)]
        bad = flaky(plan.uid)
        roll = rng.random()
        if bad and roll < 0.33:
            quality = 0.0
        elif roll < 0.05:
            quality = rng.uniform(0.3, 0.8)
        else:
            quality = rng.uniform(0.9, 1.0) if not bad else rng.uniform(0.6, 1.0)
        work = 20.0 if "diffusion" in plan.task else float(rng.randint(40, 400))
        speed = 40.0 * (1 + (plan.uid % 5) / 2) * (0.5 if bad else 1.0)
        yield {
            "task": plan.task,
            "miner_hotkey": plan.hotkey,
            "quality": round(quality, 4),
            "work": work,
            "response_time_s": work / speed * rng.uniform(0.8, 1.25),
            "organic": rng.random() < 0.6,
            "created_at": start + timedelta(seconds=window_s * (index + rng.random()) / total),
        }


async def add_checks(db: Database, rows: Iterator[dict[str, Any]], batch: int = 5000) -> None:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            async with db.transaction() as session:
                await session.execute(insert(CheckResult), chunk)
            chunk = []
    if chunk:
        async with db.transaction() as session:
            await session.execute(insert(CheckResult), chunk)


def scoring_settings(**scoring: Any) -> Settings:
    return Settings.from_env({}, overrides={"environment": "dev", "scoring": scoring})


async def weigh(db: Database, catalog: Catalog, *, block: int, status: str = "set") -> int:
    """A weight run computed from the database by the weight setter, then marked ``status``."""
    setter = WeightSetter(
        db=db,
        chain=LocalChain(Path("/nonexistent/chain.txt"), netuid=NETUID),
        catalog=catalog,
        settings=scoring_settings(),
        backoff=Backoff(initial_s=1, max_s=1),
    )
    run_id, _ = await setter.compute(block=block)
    message = "weights recorded" if status == "set" else "too soon to set weights: 12 more blocks"
    await finish_run(db, run_id, status=status, message=message, version_key=0, block=block)
    return run_id


async def publish_live(
    redis: Any, prefix: str, period: PeriodView, catalog: Catalog, rng: random.Random
) -> None:
    """What ``sn19 scoring`` and the gateways keep in Redis: the routes of the open period,
    and its contenders' counters so far."""
    routes = routes_for(period, catalog, {})
    for task, task_routes in routes.items():
        await RouteStore(redis, prefix=prefix).publish(task, task_routes, ttl_s=3600)
    live = {
        (period.id, c.task, c.hotkey): {
            "requests": rng.randint(1, 20),
            "consumed": c.quota * rng.uniform(0.1, 0.5),
            "failed": rng.randint(1, 4) if flaky(c.uid) else 0,
            "rate_limited": 1 if flaky(c.uid) else 0,
        }
        for c in period.contenders
    }
    await ContenderCounters(redis, prefix=prefix, ttl_s=3600).add(live)


@dataclass
class Seeded:
    neurons: list[Neuron]
    period: PeriodView
    run_id: int

    @property
    def hotkeys(self) -> list[str]:
        return [n.hotkey for n in self.neurons if not n.validator_permit]


async def seed_scoreboard(
    db: Database,
    catalog: Catalog,
    *,
    miners: int = 8,
    periods: int = 12,
    checks: int = 600,
    redis: Any = None,
    prefix: str = "",
    seed: int = 19,
    period_s: float = 1800.0,
) -> Seeded:
    """A small validator history: miners, closed periods, checks, one weight run set on chain
    and (with ``redis``) the live routes and counters."""
    rng = random.Random(seed)
    found = await seed_metagraph(db, miners)
    made = plans(found, catalog, rng)
    period = await seed_periods(db, made, periods=periods, rng=rng, period_s=period_s)
    await add_checks(db, check_rows(made, checks, rng, window_s=20 * 3600))
    run_id = await weigh(db, catalog, block=4_000_000 + periods * 150)
    if redis is not None:
        await publish_live(redis, prefix, period, catalog, rng)
    return Seeded(found, period, run_id)
