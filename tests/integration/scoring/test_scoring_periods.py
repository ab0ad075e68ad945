"""Periods against real miners, Redis and both databases: contenders and routes at the start,
scores at the close, continuation by another process, the chain down at a period start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from core.chain import LocalChain
from core.db import Database
from core.db.tables.scoring import Contender, Period
from core.miners.rawhttp import RawMinerClient
from core.miners.stats import Outcome
from core.wallet import load_signer
from protocol.catalog import resolve_catalog
from scoring import formulas, store
from scoring.counters import ContenderCounters
from scoring.routes import RouteReader
from tests.integration.scoring.conftest import REDIS_URL
from tests.support.scoring import CHAT, local_miners, period_manager, scoring_settings

pytestmark = pytest.mark.redis


async def test_period_lifecycle(
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
        period_s=2.0,
    )
    stop = asyncio.Event()
    async with local_miners(wallet_root, chain_file, 2) as miners:
        client = RawMinerClient(load_signer(settings))
        try:
            leader = period_manager(settings, scoring_db, redis_client, client, "leader")
            first = await leader.advance(stop)
            assert first is not None and {c.hotkey for c in first.contenders} == {
                m.hotkey for m in miners
            }
            chat = resolve_catalog("dev").get(CHAT)
            for contender in first.contenders:
                assert contender.task == CHAT and contender.capacity == chat.max_capacity
                assert contender.concurrency == 8 and contender.routable
                assert contender.quota == contender.capacity * contender.quota_multiplier
                assert contender.url in {m.url for m in miners}
            await leader.publish_routes(first)
            routes = await RouteReader(redis_client, prefix=redis_prefix).routes(CHAT)
            assert {r.hotkey for r in routes} == {m.hotkey for m in miners}
            assert {r.period_id for r in routes} == {first.id}

            # Another process continues the running period: same id, same contenders.
            standby = period_manager(settings, scoring_db, redis_client, client, "standby")
            assert await standby.advance(stop) == first

            counters = ContenderCounters(redis_client, prefix=redis_prefix, ttl_s=600)
            busy = miners[0].hotkey
            for outcome in (Outcome.OK, Outcome.OK, Outcome.OK, Outcome.TIMEOUT):
                await counters.record(first.id, CHAT, busy, outcome, volume=300, organic=False)
            await counters.record(first.id, CHAT, busy, Outcome.RATE_LIMITED, organic=True)
            await asyncio.sleep(max(first.ends_at - time.time(), 0) + 0.05)

            second = await standby.advance(stop)
            assert second is not None and second.id != first.id
            async with scoring_db.read() as session:
                rows = {
                    r.hotkey: r
                    for r in (
                        await session.scalars(
                            select(Contender).where(Contender.period_id == first.id)
                        )
                    ).all()
                }
                closed = await session.get(Period, first.id)
                assert closed is not None and closed.status == "closed"
            row = rows[busy]
            assert (row.requests, row.rate_limited, row.failed, row.consumed) == (5, 1, 1, 900)
            assert (row.organic_requests, row.synthetic_requests, row.closed) == (1, 4, True)
            assert row.period_score == pytest.approx(
                formulas.period_score(
                    capacity=row.capacity, consumed=900, requests=5, rate_limited=1, failed=1
                )
            )
            idle = rows[miners[1].hotkey]
            assert idle.period_score is None and idle.requests == 0  # no requests: no score

            # The leader lost the race to close `first`: it gets the period the other opened.
            again = await store.rotate(
                scoring_db,
                closing=first,
                counts={},
                plans=[],
                now=time.time(),
                period_s=2.0,
                seed=1,
                opened_by="late",
                block=None,
            )
            assert again is None
            assert (await leader.advance(stop)).id == second.id

            # The chain is down at the next start: the last synced metagraph is used.
            LocalChain(chain_file).down_path.touch()
            await asyncio.sleep(max(second.ends_at - time.time(), 0) + 0.05)
            third = await leader.advance(stop)
            assert third is not None and third.id not in (first.id, second.id)
            assert len(third.contenders) == 2
        finally:
            await client.close()


async def test_a_period_without_contenders_is_retried_soon(
    scoring_db: Database,
    db_url: str,
    redis_client: Redis,
    redis_prefix: str,
    wallet_root: Path,
    chain_file: Path,
    tmp_path: Path,
) -> None:
    from tests.support.scoring import validator_hotkey, write_network

    write_network(
        chain_file, validator=validator_hotkey(wallet_root), miners=[("5Gone", "127.0.0.1:9")]
    )
    settings = scoring_settings(
        tmp_path,
        wallet_root=wallet_root,
        db_url=db_url,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        chain_file=chain_file,
        period_s=600,
        empty_period_retry_s=0.3,
        capacity_timeout_s=0.5,
    )
    client = RawMinerClient(load_signer(settings), connect_timeout=0.3)
    try:
        periods = period_manager(settings, scoring_db, redis_client, client, "x")
        stop = asyncio.Event()
        empty = await periods.advance(stop)
        assert empty is not None and empty.contenders == ()
        assert await periods.advance(stop) == empty  # not yet
        await asyncio.sleep(0.35)
        assert periods.expired(empty, time.time())
        assert (await periods.advance(stop)).id != empty.id
    finally:
        await client.close()
