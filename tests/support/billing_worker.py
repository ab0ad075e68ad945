"""A separate process that takes credit holds, for concurrency and crash tests.

    python -m tests.support.billing_worker URL CONTEXT_JSON --holds N [--settle] [--hang]

Opens its connection pool and waits until ``--start-after`` seconds (default 8) after its own
process started, so workers started together take their holds together whatever their import
time; then takes N holds concurrently, their starts spread over ``--spread`` seconds (default
1) so that workers some milliseconds apart still interleave, for the context's key (chat task
of the dev catalog, estimate ``estimate_chat(0, 5000)`` = 1000 micro-credits each), settles them
when asked, and prints one JSON line ``{"ok": .., "refused": .., "hold_ids": [...]}``. With
``--hang`` it then prints ``ready`` and sleeps until killed (holds left open, as by a crashed
gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import msgspec
from sqlalchemy import text

from billing import InsufficientCredits, KeyContext, Usage, estimate_chat
from billing.price_book import PriceBook
from billing.service import BillingService
from core.db.engine import Database
from core.settings import DatabaseSettings
from protocol.catalog import resolve_catalog


def process_started_at() -> float:
    """Wall-clock time this process started (Linux ``/proc``; 10 ms resolution)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


async def main(args: argparse.Namespace) -> None:
    catalog = resolve_catalog("dev")
    task = catalog.get("sn19-tiny-chat")
    assert task is not None
    db = Database.from_url(args.url, DatabaseSettings(pool_size=args.pool, max_overflow=0))
    service = BillingService(db, PriceBook(db, catalog))
    ctx = msgspec.json.decode(args.context, type=KeyContext)
    results: list[int | None] = []

    async def one(i: int, start: float) -> None:
        await asyncio.sleep(max(0.0, start + i * args.spread / args.holds - time.time()))
        try:
            hold = await service.hold(
                ctx,
                task,
                estimate_chat(0, 5000),
                request_id=f"{args.tag}-{i}",
                expires_in=args.expires_in,
            )
        except InsufficientCredits:
            results.append(None)
            return
        results.append(hold.id)
        if args.settle:
            await service.settle(hold, Usage(output_tokens=2500), miner_hotkey="w", latency_ms=1)

    async def connect(_: int) -> None:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))

    await asyncio.gather(*(connect(i) for i in range(args.pool)))  # the pool is open
    start = process_started_at() + args.start_after
    await asyncio.gather(*(one(i, start) for i in range(args.holds)))
    ids = [r for r in results if r is not None]
    print(json.dumps({"ok": len(ids), "refused": len(results) - len(ids), "hold_ids": ids}))
    sys.stdout.flush()
    if args.hang:
        print("ready", flush=True)
        await asyncio.sleep(3600)
    await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("context")
    parser.add_argument("--holds", type=int, default=100)
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--settle", action="store_true")
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--expires-in", type=float, default=None)
    parser.add_argument("--tag", default="w")
    parser.add_argument("--start-after", type=float, default=8.0)
    parser.add_argument("--spread", type=float, default=1.0)
    asyncio.run(main(parser.parse_args()))
