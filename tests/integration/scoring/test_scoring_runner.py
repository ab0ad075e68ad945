"""`scoring.process.run` in-process: it survives a chain that is down from the start (clear
logs, no crash), then opens a period against real miners, publishes the routes and runs the
weight setter, and stops cleanly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.chain import LocalChain
from core.db import Database
from scoring import store
from scoring.process import run
from scoring.routes import RouteReader
from scoring.weights.runs import load_run
from tests.integration.scoring.conftest import REDIS_URL
from tests.support.scoring import CHAT, local_miners, scoring_settings

pytestmark = pytest.mark.redis


async def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_runner_survives_the_chain_being_down_then_works(
    scoring_db: Database,
    db_url: str,
    redis_client: Redis,
    redis_prefix: str,
    wallet_root: Path,
    chain_file: Path,
    tmp_path: Path,
    caplog,
) -> None:
    settings = scoring_settings(
        tmp_path,
        wallet_root=wallet_root,
        db_url=db_url,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        chain_file=chain_file,
        period_s=30.0,
    )
    caplog.set_level(logging.INFO)
    async with local_miners(wallet_root, chain_file, 2) as miners:
        down = LocalChain(chain_file).down_path
        down.touch()
        stop = asyncio.Event()
        task = asyncio.ensure_future(run(settings, stop=stop))
        expected = (
            "leading the scoring loop",
            "chain unreachable and no metagraph synced yet",
            "weights: chain unreachable",
        )

        async def logged() -> bool:
            logs = [r.getMessage() for r in caplog.records]
            return all(any(text in m for m in logs) for text in expected)

        # The loops say so as soon as they meet the chain down (a busy machine may take a while).
        await wait_for(logged)
        assert not task.done()
        assert await store.open_period(scoring_db) is None  # nothing synced yet: cannot start

        down.unlink()

        async def opened() -> bool:
            return await store.open_period(scoring_db) is not None

        await wait_for(opened)
        reader = RouteReader(redis_client, prefix=redis_prefix, cache_s=0)

        async def routed() -> bool:
            return {r.hotkey for r in await reader.routes(CHAT)} == {m.hotkey for m in miners}

        await wait_for(routed)

        async def weighed() -> bool:
            return await load_run(scoring_db) is not None

        await wait_for(weighed)
        assert (await load_run(scoring_db)).status == "skipped"  # no checks yet: all zero

        # Down again mid-period: the loop keeps going, and keeps the routes published.
        down.touch()
        await asyncio.sleep(0.6)
        assert not task.done()
        assert await reader.routes(CHAT)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await redis_client.get(f"{redis_prefix}scoring:leader") is None  # released
