"""How fast the dashboard's busiest pages render with a year of traffic and a full subnet.

Seeds a fresh, migrated database with one year of usage: ``--records`` per-request usage
records (default 1,000,000) spread over 50 accounts (one customer has 40 % of them, its
traffic growing over the year), a ledger row per request, and the daily aggregates
(``usage_daily``) computed from the records exactly as billing's settle maintains them. Then
signs in an operator and the busiest customer and renders each page ``--repeat`` times through
the real dashboard app (mounted at /dashboard, session lookup, templates, charts; in-process
ASGI, no network), printing p50 / p95 / max milliseconds per page.

    .venv/bin/python benchmarks/dashboard_pages.py                       # PostgreSQL
    .venv/bin/python benchmarks/dashboard_pages.py --db sqlite --records 200000
    .venv/bin/python benchmarks/dashboard_pages.py --only miners         # the scoring pages

PostgreSQL: the server of ``SN19_TEST_POSTGRES_URL`` (default
postgresql+asyncpg://postgres@127.0.0.1:5432/sn19_test); a database ``sn19_bench_<random>`` is
created and dropped afterwards (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from litestar import Litestar  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from billing import Billing  # noqa: E402
from core.db.engine import Database  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from protocol.catalog import resolve_catalog  # noqa: E402
from tests.support.scoreboard import hotkey  # noqa: E402
from tests.support.scoreboard_bulk import connect_redis, seed_subnet  # noqa: E402
from web import UserService, create_dashboard, mount_dashboard  # noqa: E402
from web.tokens import csrf_token  # noqa: E402

PG_SERVER = os.environ.get(
    "SN19_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/sn19_test"
)
REDIS_URL = os.environ.get("SN19_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ACCOUNTS = 50
BUSY_SHARE = 0.4
TASKS = [
    ("sn19-tiny-chat", "chat"),
    ("all-minilm-l6-v2", "embedding"),
    ("sn19-tiny-diffusion", "image"),
]
PASSWORD = "benchmark-password"
STATUSES = ["ok"] * 97 + ["upstream_error", "client_disconnected", "no_capacity"]


def records(total: int, keys: dict[int, list[int]], busy: int, now: datetime) -> Iterator[tuple]:
    """(account_id, key_id, request_id, task, kind, in, out, images, steps, cost, hotkey,
    latency, status, created_at) oldest first; daily volume grows over the year."""
    rng = random.Random(19)
    weights = [1.0 + 2.0 * day / 364 for day in range(365)]
    scale = total / sum(weights)
    start = now - timedelta(days=365)
    others = [a for a in keys if a != busy]
    made = 0
    for day in range(365):
        count = round(weights[day] * scale) if day < 364 else total - made
        base = start + timedelta(days=day)
        offsets = sorted(rng.random() * 86400 for _ in range(count))
        for offset in offsets:
            account = busy if rng.random() < BUSY_SHARE else rng.choice(others)
            task, kind = TASKS[0] if rng.random() < 0.8 else rng.choice(TASKS[1:])
            status = rng.choice(STATUSES)
            tin = rng.randint(20, 2000) if kind != "image" else 0
            tout = rng.randint(10, 800) if kind == "chat" else 0
            images, steps = (1, 20) if kind == "image" else (0, 0)
            cost = 0 if status != "ok" else (tin * 150 + tout * 600) // 1_000_000 + steps * 1000
            yield (
                account,
                rng.choice(keys[account]),
                f"req-{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
                task,
                kind,
                tin,
                tout,
                images,
                steps,
                cost,
                f"5Miner{rng.randint(1, 64):02d}" + "x" * 40,
                rng.randint(80, 4000),
                status,
                base + timedelta(seconds=offset),
            )
        made += count


COLUMNS = [
    "account_id",
    "key_id",
    "request_id",
    "task",
    "kind",
    "input_tokens",
    "output_tokens",
    "images",
    "steps",
    "cost",
    "miner_hotkey",
    "latency_ms",
    "status",
    "created_at",
]
DAILY_SQL = """
INSERT INTO usage_daily (day, account_id, key_id, task, requests, errors, input_tokens,
                         output_tokens, images, steps, cost)
SELECT {day}, account_id, key_id, task, count(*), sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END),
       sum(input_tokens), sum(output_tokens), sum(images), sum(steps), sum(cost)
FROM usage_records GROUP BY {day}, account_id, key_id, task
"""
LEDGER_SQL = """
INSERT INTO ledger_entries (account_id, kind, amount, balance_after, key_id, actor, reason,
                            reference, created_at)
SELECT account_id, 'settle', -cost, 0, key_id, 'key:' || key_id, 'request', request_id, created_at
FROM usage_records ORDER BY id
"""


async def seed_accounts(db: Database) -> tuple[dict[int, list[int]], int]:
    settings = Settings.from_env({}, overrides={"environment": "dev"})
    billing = Billing.create(settings, resolve_catalog("dev"), db, None)
    keys: dict[int, list[int]] = {}
    for index in range(ACCOUNTS):
        account = await billing.accounts.create(
            f"bench-{index:02d}", email=f"b{index}@bench.example"
        )
        await billing.accounts.grant(account.id, 10**12, actor="bench", reason="seed")
        keys[account.id] = [
            (await billing.keys.create(account.id, f"k{j}")).key.id for j in range(2)
        ]
    return keys, min(keys)


async def seed_postgres(url: str, total: int, keys: dict[int, list[int]], busy: int) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        batch: list[tuple] = []
        for row in records(total, keys, busy, datetime.now(UTC)):
            batch.append(row)
            if len(batch) == 100_000:
                await connection.copy_records_to_table(
                    "usage_records", records=batch, columns=COLUMNS
                )
                batch = []
        if batch:
            await connection.copy_records_to_table("usage_records", records=batch, columns=COLUMNS)
        await connection.execute("SET TIME ZONE 'UTC'")
        await connection.execute(DAILY_SQL.format(day="(created_at AT TIME ZONE 'UTC')::date"))
        await connection.execute(LEDGER_SQL)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def seed_sqlite(path: str, total: int, keys: dict[int, list[int]], busy: int) -> None:
    connection = sqlite3.connect(path)
    try:
        placeholders = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO usage_records ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        batch: list[tuple] = []
        for row in records(total, keys, busy, datetime.now(UTC)):
            created = row[-1].astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            batch.append((*row[:-1], created))
            if len(batch) == 100_000:
                connection.executemany(sql, batch)
                batch = []
        if batch:
            connection.executemany(sql, batch)
        connection.execute(DAILY_SQL.format(day="date(created_at)"))
        connection.execute(LEDGER_SQL)
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def _middle(session: AsyncSession, table: str, account_id: int) -> int:
    count = (
        await session.execute(
            text(f"SELECT count(*) FROM {table} WHERE account_id = :a"), {"a": account_id}
        )
    ).scalar_one()
    found = await session.execute(
        text(f"SELECT id FROM {table} WHERE account_id = :a ORDER BY id LIMIT 1 OFFSET :o"),
        {"a": account_id, "o": int(count) // 2},
    )
    return int(found.scalar_one())


async def signed_in(app: Litestar, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    form = await client.get("/dashboard/login")
    pre = form.cookies.get("sn19_pre") or client.cookies.get("sn19_pre")
    response = await client.post(
        "/dashboard/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(str(pre))},
    )
    assert response.status_code == 303, response.text
    return client


async def measure(client: httpx.AsyncClient, path: str, repeat: int) -> tuple[float, list[float]]:
    """The first request's time (cold: per-process caches empty), then ``repeat`` timings."""
    started = time.perf_counter()
    warm = await client.get(path)
    first = (time.perf_counter() - started) * 1000
    assert warm.status_code == 200, (path, warm.status_code, warm.text[:500])
    await client.get(path)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return first, times


async def run(url: str, args: argparse.Namespace) -> None:
    db = Database.from_url(url)
    redis = await connect_redis(REDIS_URL) if args.only != "business" else None
    prefix = "sn19bench:"
    try:
        started = time.perf_counter()
        keys, busy = await seed_accounts(db)
        if args.only != "miners":
            if db.is_sqlite:
                await asyncio.to_thread(
                    seed_sqlite, str(make_url(url).database), args.records, keys, busy
                )
            else:
                await seed_postgres(url, args.records, keys, busy)
            async with db.read() as session:
                counts = {
                    table: (
                        await session.execute(text(f"SELECT count(*) FROM {table}"))
                    ).scalar_one()
                    for table in ("usage_records", "usage_daily", "ledger_entries")
                }
                # Half-way through the busiest account's history: a deep keyset page.
                mid_usage = await _middle(session, "usage_records", busy)
                mid_ledger = await _middle(session, "ledger_entries", busy)
            print(f"seeded in {time.perf_counter() - started:.1f}s: {counts}; busiest {busy}")
        if args.only != "business":
            prefix = await seed_subnet(
                db, url, miners=args.miners, periods=args.periods, checks=args.checks, redis=redis
            )

        users = UserService(db)
        admin = await users.create("admin@bench.example", PASSWORD, role="admin")
        customer = await users.create(
            "busy@bench.example", PASSWORD, role="customer", account_id=busy
        )
        settings = Settings.from_env(
            {}, overrides={"environment": "dev", "redis": {"key_prefix": prefix}}
        )
        catalog = resolve_catalog("dev")
        billing = Billing.create(settings, catalog, db, None)
        dashboard = create_dashboard(
            settings,
            db=db,
            billing=billing,
            redis=redis,
            catalog=catalog,  # type: ignore[arg-type]
        )
        app = Litestar(route_handlers=[mount_dashboard(dashboard)])
        operator = await signed_in(app, admin.email)
        buyer = await signed_in(app, customer.email)
        pages: list[tuple[httpx.AsyncClient, str]] = []
        if args.only != "miners":
            cursor_page = await buyer.get("/dashboard/usage?days=365")
            cursor = cursor_page.text.split("cursor=", 1)[1].split('"', 1)[0]
            pages += [
                (operator, "/dashboard/admin?days=365"),
                (operator, "/dashboard/admin?days=30"),
                (operator, "/dashboard/admin/accounts"),
                (operator, f"/dashboard/admin/accounts/{busy}"),
                (operator, f"/dashboard/admin/accounts/{busy}?before={mid_ledger}"),
                (buyer, "/dashboard/overview"),
                (buyer, "/dashboard/usage?days=365"),
                (buyer, f"/dashboard/usage?days=365&cursor={cursor}"),
                (buyer, "/dashboard/usage/requests"),
                (buyer, f"/dashboard/usage/requests?before={mid_usage}"),
                (buyer, "/dashboard/billing"),
                (buyer, f"/dashboard/billing?before={mid_ledger}"),
            ]
        if args.only != "business":
            pages += [
                (operator, "/dashboard/admin/miners"),
                (operator, "/dashboard/admin/miners?task=sn19-tiny-chat&sort=weight"),
                (operator, f"/dashboard/admin/miners/{hotkey(3)}"),
                (operator, "/dashboard/admin/checker"),
                (operator, "/dashboard/admin/chain"),
            ]
        print(f"\n{'page':<66}{'first':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
        for client, path in pages:
            first, measured = await measure(client, path, args.repeat)
            times = sorted(measured)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            who = "operator" if client is operator else "customer"
            label = f"{who} {path[:56]}"
            median = statistics.median(times)
            print(f"{label:<66}{first:>9.1f}{median:>9.1f}{p95:>9.1f}{times[-1]:>9.1f}")
        await operator.aclose()
        await buyer.aclose()
    finally:
        await db.dispose()
        if redis is not None:
            found = [k async for k in redis.scan_iter(match=f"{prefix}*")]
            if found:
                await redis.delete(*found)
            await redis.aclose()


async def _admin(sql: str) -> None:
    dsn = make_url(PG_SERVER).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def main() -> None:
    for noisy in ("httpx", "web"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--periods", type=int, default=48)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument(
        "--only", choices=["all", "business", "miners"], default="all", help="which pages"
    )
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    args = parser.parse_args()
    if args.db == "sqlite":
        directory = tempfile.mkdtemp(prefix="sn19-bench-")
        url = f"sqlite+aiosqlite:///{directory}/bench.db"
        upgrade(url)
        try:
            asyncio.run(run(url, args))
        finally:
            if not args.keep:
                Path(f"{directory}/bench.db").unlink(missing_ok=True)
            print(f"\ndatabase: {url}" if args.keep else "")
        return
    name = f"sn19_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        asyncio.run(run(url, args))
    finally:
        if args.keep:
            print(f"\ndatabase kept: {url}")
        else:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
