"""A separate process that takes credit holds, for concurrency and crash tests.

    python -m tests.support.billing_worker URL CONTEXT_JSON --holds N [--settle] [--hang]

Takes N holds concurrently for the context's key (chat task of the dev catalog, estimate
``estimate_chat(0, 5000)`` = 1000 micro-credits each), settles them when asked, and prints one
JSON line ``{"ok": .., "refused": .., "hold_ids": [...]}``. With ``--hang`` it then prints
``ready`` and sleeps until killed (holds left open, as by a crashed gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import msgspec

from billing import InsufficientCredits, KeyContext, Usage, estimate_chat
from billing.prices import PriceBook
from billing.service import BillingService
from core.db.engine import Database
from core.settings import DatabaseSettings
from protocol.catalog import resolve_catalog


async def main(args: argparse.Namespace) -> None:
    catalog = resolve_catalog("dev")
    task = catalog.get("sn19-tiny-chat")
    assert task is not None
    db = Database.from_url(args.url, DatabaseSettings(pool_size=args.pool, max_overflow=0))
    service = BillingService(db, PriceBook(db, catalog))
    ctx = msgspec.json.decode(args.context, type=KeyContext)
    results: list[int | None] = []

    async def one(i: int) -> None:
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

    await asyncio.gather(*(one(i) for i in range(args.holds)))
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
    asyncio.run(main(parser.parse_args()))
