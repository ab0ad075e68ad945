"""A full subnet's scoring state for the dashboard benchmark (``benchmarks/dashboard_pages.py``):
``tests.support.scoreboard``'s writers at scale, with the check results bulk-loaded (COPY on
PostgreSQL, executemany on SQLite) instead of inserted through the ORM."""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from core.db import Database
from core.redis import create_redis
from protocol.catalog import resolve_catalog
from scoring.contenders import ContenderPlan
from tests.support import scoreboard

CHECK_COLUMNS = [
    "task", "miner_hotkey", "quality", "work", "response_time_s", "organic", "created_at",
]  # fmt: skip
QUALITY_WINDOW_S = 72 * 3600


async def seed_checks(db: Database, url: str, made: list[ContenderPlan], total: int) -> None:
    rows = (
        tuple(row[c] for c in CHECK_COLUMNS)
        for row in scoreboard.check_rows(made, total, random.Random(7), window_s=QUALITY_WINDOW_S)
    )
    if db.is_sqlite:
        names = ", ".join(CHECK_COLUMNS)
        sql = f"INSERT INTO check_results ({names}) VALUES ({', '.join('?' * len(CHECK_COLUMNS))})"
        stamp = "%Y-%m-%d %H:%M:%S.%f"
        with sqlite3.connect(str(make_url(url).database)) as connection:
            connection.executemany(sql, ((*r[:-1], r[-1].strftime(stamp)) for r in rows))
            connection.execute("ANALYZE")
        return
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table("check_results", records=rows, columns=CHECK_COLUMNS)
        # What autovacuum does soon after a load: statistics, and the visibility map that lets
        # index-only scans skip the table.
        await connection.execute("VACUUM ANALYZE check_results")
    finally:
        await connection.close()


async def seed_subnet(
    db: Database, url: str, *, miners: int, periods: int, checks: int, redis: Any
) -> str:
    """Metagraph, ``periods`` closed periods and the open one, ``checks`` check results over
    the quality window, a weight run; routes and live counters in Redis when given. Returns
    the Redis key prefix used."""
    started = time.perf_counter()
    catalog = resolve_catalog("dev")
    rng = random.Random(19)
    found = await scoreboard.seed_metagraph(db, miners)
    made = scoreboard.plans(found, catalog, rng)
    period = await scoreboard.seed_periods(db, made, periods=periods, rng=rng, period_s=1800.0)
    await seed_checks(db, url, made, checks)
    await scoreboard.weigh(db, catalog, block=4_000_000 + periods * 150)
    prefix = f"sn19bench:{uuid.uuid4().hex[:8]}:"
    if redis is not None:
        await scoreboard.publish_live(redis, prefix, period, catalog, rng)
    print(
        f"scoring seeded in {time.perf_counter() - started:.1f}s: {miners} miners, "
        f"{len(made)} contenders x {periods + 1} periods, {checks} checks"
    )
    return prefix


async def connect_redis(url: str) -> Any:
    """A Redis client, or None (with a note) when nothing answers at ``url``."""
    client = create_redis(url, max_connections=16)
    try:
        await client.ping()
    except OSError:
        await client.aclose()
        print(f"no Redis at {url}: routes and live counters not seeded")
        return None
    return client
