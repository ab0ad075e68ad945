"""How many requests per second one account can hold and settle on PostgreSQL.

Every hold and settle of an account locks that account's row; with one statement per request a
single busy customer is capped by that lock (run this script on a commit before the group
commit for the comparison). The gateway's billing
(``Billing.create(fast_path=True)``: the asyncpg pools of ``billing.fastpath``, the per-account
group commit of ``billing.lanes``) is measured here: ``--clients`` concurrent requests of ONE
account, each a hold of the largest possible cost and a settle of a random usage, for
``--duration`` seconds, on a fresh database (created on ``--postgres-url``'s server, migrated,
dropped at the end). The account has enough credit for every request in flight. Prints holds +
settles per second and checks the ledger (``ledger.verify``) afterwards.

    .venv/bin/python benchmarks/billing_throughput.py [--clients 64] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from billing import Billing, Usage, estimate_chat  # noqa: E402
from billing.money import MICRO  # noqa: E402
from core.db.engine import Database  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from protocol.catalog import resolve_catalog  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    admin = args.postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"sn19_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        settings = Settings.from_env(
            {},
            overrides={
                "environment": "dev",
                "database": {"url": url, "pool_size": args.pool},
                "billing": {"key_hash_secret": "bench"},
            },
        )
        catalog = resolve_catalog("dev")
        task = catalog.get("sn19-tiny-chat")
        assert task is not None
        db = Database.from_url(url, settings.database)
        billing = Billing.create(settings, catalog, db, None, fast_path=True)
        account = await billing.accounts.create("bench")
        await billing.accounts.grant(account.id, 10**6 * MICRO, actor="bench", reason="bench")
        created = await billing.keys.create(account.id, "bench", rpm_limit=None, tpm_limit=None)
        key = await billing.authenticator.authenticate(created.secret)
        estimate = estimate_chat(20, 200)
        rng = random.Random(1)
        done = 0
        until = time.monotonic() + args.duration

        async def client(index: int) -> None:
            nonlocal done
            while time.monotonic() < until:
                hold = await billing.service.hold(key, task, estimate, request_id=f"b{index}")
                usage = Usage(input_tokens=20, output_tokens=rng.randrange(1, 200))
                await billing.service.settle(hold, usage)
                done += 1

        started = time.monotonic()
        cpu = time.process_time()
        await asyncio.gather(*(client(i) for i in range(args.clients)))
        await billing.service.drain()
        elapsed = time.monotonic() - started
        used = time.process_time() - cpu
        report = await billing.accounts.verify([account.id])
        balance = await billing.accounts.balance(account.id)
        print(
            f"{args.clients} clients, {done} holds + settles in {elapsed:.1f}s = "
            f"{done / elapsed:,.0f}/s (this process: {used / done * 1e6:,.0f} µs CPU each); "
            f"ledger verify: {'ok' if report.ok else report}; held after: {balance.held}"
        )
        await billing.aclose()
        await db.dispose()
    finally:
        connection = await asyncpg.connect(admin)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--pool", type=int, default=20, help="database.pool_size")
    parser.add_argument(
        "--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    import uvloop

    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
