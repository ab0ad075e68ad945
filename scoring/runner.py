"""`sn19 scoring`: the validator loop's process (composition root: ``run(settings)``).

Each period it reads the metagraph, asks every serving miner for its capacity and publishes the
routing table the gateways read. A chain or miner that cannot be reached is logged and retried
with backoff; the loop never dies of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core.chain import Chain, ChainUnavailable, chain_from_settings
from core.miners.client import AiohttpMinerClient, MinerClient
from core.redis import create_redis
from core.settings import Settings
from core.wallet import load_signer
from protocol.catalog import Catalog, resolve_catalog
from scoring.discovery import fetch_capacities, routes_from_answers
from scoring.routes import RouteStore

log = logging.getLogger(__name__)


async def refresh_routes(
    *,
    chain: Chain,
    client: MinerClient,
    store: RouteStore,
    catalog: Catalog,
    self_hotkey: str,
    settings: Settings,
) -> dict[str, int]:
    """One discovery round; returns the number of routes per task."""
    metagraph = await chain.metagraph()
    answers = await fetch_capacities(
        client,
        metagraph,
        catalog,
        self_hotkey=self_hotkey,
        period_s=settings.scoring.period_s,
        timeout=settings.scoring.capacity_timeout_s,
    )
    routes = routes_from_answers(answers, catalog, period_start=time.time())
    ttl = 2 * settings.scoring.period_s + 30
    for task_id, task_routes in routes.items():
        await store.publish(task_id, task_routes, ttl_s=ttl)
    return {task_id: len(task_routes) for task_id, task_routes in routes.items()}


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    catalog = resolve_catalog(settings.catalog)
    signer = load_signer(settings)
    redis = create_redis(settings.redis.url, max_connections=settings.redis.max_connections)
    chain = chain_from_settings(settings, hotkey=signer.hotkey)
    client = AiohttpMinerClient(signer, connect_timeout=settings.gateway.connect_timeout_s)
    store = RouteStore(redis, prefix=settings.redis.key_prefix)
    backoff = 1.0
    log.info("scoring loop started as %s (period %.0fs)", signer.hotkey, settings.scoring.period_s)
    try:
        while not stop.is_set():
            try:
                counts = await refresh_routes(
                    chain=chain,
                    client=client,
                    store=store,
                    catalog=catalog,
                    self_hotkey=signer.hotkey,
                    settings=settings,
                )
                log.info("routes published: %s", counts)
                wait = settings.scoring.period_s
                backoff = 1.0
            except ChainUnavailable as exc:
                log.warning("chain unreachable, retrying in %.0fs: %s", backoff, exc)
                wait, backoff = backoff, min(backoff * 2, 60.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        await client.close()
        await chain.close()
        await redis.aclose()
