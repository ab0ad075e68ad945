"""A miner whose forwarded upstream is down says so on ``/healthz``; the scoring process stops
routing its task at the next publication and routes it again once the upstream is back. Real
miners, a real upstream server, Redis and the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.db import Database
from core.miners.rawhttp import RawMinerClient
from core.wallet import load_signer
from inference.forward import ForwardTextEngine
from protocol.catalog import EngineSpec
from scoring.health import MinerHealthProbe
from scoring.routes import RouteReader
from tests.integration.scoring.conftest import REDIS_URL
from tests.support.scoring import CHAT, local_miners, period_manager, scoring_settings
from tests.support.upstream import JsonUpstream

pytestmark = pytest.mark.redis

TTL_S = 0.2


async def test_a_degraded_miner_is_not_routed_until_it_recovers(
    scoring_db: Database,
    db_url: str,
    redis_client: Redis,
    redis_prefix: str,
    wallet_root: Path,
    chain_file: Path,
    tmp_path: Path,
) -> None:
    settings = scoring_settings(
        tmp_path,
        wallet_root=wallet_root,
        db_url=db_url,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        chain_file=chain_file,
        period_s=600.0,
    )
    upstream = JsonUpstream({})
    await upstream.start()
    engine = ForwardTextEngine(
        EngineSpec(
            type="forward",
            model="m",
            options={"base_url": upstream.base_url, "health_ttl_s": TTL_S},
        )
    )
    await engine.start()
    client = RawMinerClient(load_signer(settings))
    probe = MinerHealthProbe(timeout_s=2.0)
    try:
        async with local_miners(wallet_root, chain_file, 2, engines={0: engine}) as miners:
            periods = period_manager(settings, scoring_db, redis_client, client, "leader")
            periods.health = probe
            period = await periods.advance(asyncio.Event())
            assert period is not None and len(period.contenders) == 2

            async def routed() -> set[str]:
                await periods.publish_routes(period)
                reader = RouteReader(redis_client, prefix=redis_prefix, cache_s=0.0)
                return {route.hotkey for route in await reader.routes(CHAT)}

            everyone = {m.hotkey for m in miners}
            assert await routed() == everyone
            # What the SN19TaskWithoutRoutes alert reads: every enabled task, 0 when unrouted.
            registry = periods.metrics.registry
            assert registry.get_sample_value("sn19_scoring_routes", {"task": CHAT}) == 2
            assert registry.get_sample_value("sn19_scoring_routes_published_timestamp_seconds")

            await upstream.close()
            await asyncio.sleep(TTL_S * 2)
            assert await routed() == {miners[1].hotkey}
            assert registry.get_sample_value("sn19_scoring_routes", {"task": CHAT}) == 1
            health = await probe.one(miners[0].url)
            assert health is not None and health.status == "degraded"
            assert health.degraded == [CHAT]
            healthy = await probe.one(miners[1].url)
            assert healthy is not None and (healthy.status, healthy.degraded) == ("ok", [])

            await upstream.start()  # the same port: the upstream is back
            await asyncio.sleep(TTL_S * 2)
            assert await routed() == everyone
    finally:
        await probe.close()
        await client.close()
        await engine.close()
        await upstream.close()
