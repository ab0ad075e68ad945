"""Leader failover with two real `sn19 scoring` processes on PostgreSQL and Redis: the leader is
killed with SIGKILL, the standby takes over within seconds and continues the same period (no
second period opened, no contender drawn again), then rotates it on time."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from core.db import Database
from core.db.tables.scoring import Contender, Period
from scoring import store
from tests.integration.scoring.conftest import REDIS_URL
from tests.support.scoring import clear_scoring_tables, local_miners

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PERIOD_S = 10.0
TTL_S = 2.0
POLL_S = 0.2


def write_config(path: Path, *, db_url: str, prefix: str, chain: Path, wallets: Path) -> None:
    path.write_text(
        f"""
data_dir = "{path.parent}"
catalog = "dev"
environment = "dev"

[database]
url = "{db_url}"

[redis]
url = "{REDIS_URL}"
key_prefix = "{prefix}"

[chain]
network = "local"
local_file = "{chain}"
local_block_time_s = 0.5
local_weights_rate_limit = 1000

[wallet]
name = "validator"
hotkey = "default"
path = "{wallets}"

[scoring]
period_s = {PERIOD_S}
leader_ttl_s = {TTL_S}
leader_poll_s = {POLL_S}
routes_refresh_s = 1.0
weights_check_s = 1.0
"""
    )


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "sn19", "scoring", "--config", str(config)],
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


async def until(condition, what: str, timeout: float = 30.0) -> float:
    begun = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - begun
        assert time.monotonic() - begun < timeout, f"timed out waiting: {what}"
        await asyncio.sleep(0.1)


async def test_standby_takes_over_and_continues_the_period(
    pg_db: Database,
    postgres_url: str,
    redis_client: Redis,
    redis_prefix: str,
    wallet_root: Path,
    tmp_path: Path,
) -> None:
    await clear_scoring_tables(pg_db)
    chain = tmp_path / "chain.txt"
    config = tmp_path / "validator.toml"
    write_config(config, db_url=postgres_url, prefix=redis_prefix, chain=chain, wallets=wallet_root)
    lock = f"{redis_prefix}scoring:leader"
    processes: list[subprocess.Popen[bytes]] = []

    async def holder() -> str:
        value = await redis_client.get(lock)
        return value.decode() if value else ""

    async with local_miners(wallet_root, chain, 2):
        try:
            leader = start(config, tmp_path / "a.log")
            processes.append(leader)

            async def leader_has_a_period() -> bool:
                return f":{leader.pid}:" in await holder() and (
                    await store.open_period(pg_db) is not None
                )

            await until(leader_has_a_period, "the first process leads and opens a period")
            standby = start(config, tmp_path / "b.log")
            processes.append(standby)
            await until(
                lambda: _contains(tmp_path / "b.log", "standing by"), "the second stands by"
            )
            period = await store.open_period(pg_db)
            assert period is not None and len(period.contenders) == 2
            assert period.ends_at - time.time() > 4, "too little of the period left to test"

            leader.send_signal(signal.SIGKILL)
            leader.wait(5)
            took = await until(
                lambda: _held_by(holder, standby.pid), "the standby takes over", timeout=15
            )
            assert took <= TTL_S + POLL_S + 2.0  # within seconds
            await until(
                lambda: _contains(tmp_path / "b.log", f"working in period {period.id};"),
                "the standby works in the same period",
            )
            # Continued, not restarted: one open period, the same contenders, nothing new.
            assert (await store.open_period(pg_db)) == period
            assert await _count(pg_db, Period) == 1
            assert await _count(pg_db, Contender) == 2

            async def rotated() -> bool:
                current = await store.open_period(pg_db)
                return current is not None and current.id != period.id

            await until(rotated, "the standby opens the next period", timeout=PERIOD_S + 15)
            assert await _count(pg_db, Period) == 2
            async with pg_db.read() as session:
                closed = await session.get(Period, period.id)
                assert closed is not None and closed.status == "closed"
            standby.send_signal(signal.SIGTERM)
            assert standby.wait(15) == 0
            assert await holder() == ""  # the lock was released on shutdown
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(5)
    log = (tmp_path / "b.log").read_text()
    assert "Traceback" not in log, log


async def _contains(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


async def _held_by(holder, pid: int) -> bool:
    return f":{pid}:" in await holder()


async def _count(db: Database, table: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)
