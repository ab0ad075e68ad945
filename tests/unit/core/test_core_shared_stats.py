"""Live miner stats shared across gateway replicas on a real Redis: in flight summed, EWMAs
merged by recent evidence, cool-downs shared, a dead replica's numbers expiring, and the request
path never touching Redis."""

from __future__ import annotations

import pytest

from core.miners import InProcessStats, Outcome, SharedStats
from tests.support.redis_fixtures import fixture_redis_client, fixture_redis_prefix  # noqa: F401

pytestmark = pytest.mark.redis

KEY = ("sn19-tiny-chat", "5Miner01" + "x" * 40)
OTHER = ("sn19-tiny-chat", "5Miner02" + "x" * 40)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def replica(redis, prefix: str, name: str, clock: Clock, **kwargs) -> SharedStats:
    local = InProcessStats(cooldown_base_s=30.0, cooldown_max_s=60.0, clock=clock)
    return SharedStats(
        redis, prefix=prefix, local=local, replica=name, ttl_s=2.0, clock=clock, **kwargs
    )


async def test_in_flight_is_summed_across_replicas(redis_client, redis_prefix) -> None:
    clock = Clock()
    a = replica(redis_client, redis_prefix, "a", clock)
    b = replica(redis_client, redis_prefix, "b", clock)
    a.acquire(KEY)
    a.acquire(KEY)
    b.acquire(KEY)
    assert a.snapshot(KEY).in_flight == 2  # nothing shared before a sync
    assert await a.sync() == 1
    assert await b.sync() == 2
    await a.sync()
    assert a.snapshot(KEY).in_flight == 3
    assert b.snapshot(KEY).in_flight == 3
    a.release(KEY, Outcome.OK, ttft_s=0.2)  # local changes show at once
    assert a.snapshot(KEY).in_flight == 2
    assert a.snapshot(OTHER).in_flight == 0


async def test_cooldown_by_one_replica_is_seen_by_the_others(redis_client, redis_prefix) -> None:
    clock = Clock()
    a = replica(redis_client, redis_prefix, "a", clock)
    b = replica(redis_client, redis_prefix, "b", clock)
    await b.sync()
    a.acquire(KEY)
    a.release(KEY, Outcome.CONNECT_ERROR)
    assert not a.available(KEY, clock.now)
    assert b.available(KEY, clock.now)
    await a.sync()
    await b.sync()
    assert not b.available(KEY, clock.now)
    assert b.available(OTHER, clock.now)
    snap = b.snapshot(KEY)
    assert snap.consecutive_failures == 1 and snap.cooldown_until > clock.now
    clock.now += 31.0  # the cool-down (30 s) is over everywhere
    assert b.available(KEY, clock.now) and a.available(KEY, clock.now)


async def test_ewmas_merge_by_recent_evidence(redis_client, redis_prefix) -> None:
    clock = Clock()
    a = replica(redis_client, redis_prefix, "a", clock)
    b = replica(redis_client, redis_prefix, "b", clock)
    for _ in range(10):
        a.acquire(KEY)
        a.release(KEY, Outcome.OK, ttft_s=1.0, units=100, duration_s=1.0)
        b.acquire(KEY)
        b.release(KEY, Outcome.OK, ttft_s=3.0, units=300, duration_s=1.0)
    b.acquire(KEY)
    b.release(KEY, Outcome.SERVER_ERROR)
    await a.sync()
    await b.sync()
    await a.sync()
    for stats in (a, b):
        snap = stats.snapshot(KEY)
        assert snap.ttft_s is not None and 1.5 < snap.ttft_s < 2.5
        assert snap.rate is not None and 150 < snap.rate < 250
        assert 0 < snap.error_rate < b.local.snapshot(KEY).error_rate
        assert snap.requests == 21

    # A replica's old evidence counts less than fresh evidence (half-life 60 s).
    clock.now += 600.0
    for _ in range(5):
        a.acquire(KEY)
        a.release(KEY, Outcome.OK, ttft_s=1.0)
    await a.sync()
    await b.sync()
    await a.sync()
    snap = a.snapshot(KEY)
    assert snap.ttft_s is not None and snap.ttft_s < 1.1


async def test_a_dead_replica_stops_counting(redis_client, redis_prefix) -> None:
    clock = Clock()
    wall = Clock(1_700_000_000.0)
    a = replica(redis_client, redis_prefix, "a", clock, wall=wall)
    b = replica(redis_client, redis_prefix, "b", clock, wall=wall)
    for _ in range(4):
        b.acquire(KEY)
    await b.sync()
    await a.sync()
    assert a.snapshot(KEY).in_flight == 4
    # b's blob expires on its own in Redis (PX) ...
    ttl_ms = await redis_client.pttl(f"{redis_prefix}stats:r:b")
    assert 0 < ttl_ms <= 2000
    # ... and a replica not heard from for ttl_s is dropped from the set at the next sync.
    wall.now += 5.0
    assert await a.sync() == 1
    assert a.snapshot(KEY).in_flight == 0
    assert await redis_client.zrange(f"{redis_prefix}stats:replicas", 0, -1) == [b"a"]


async def test_leaving_removes_this_replica(redis_client, redis_prefix) -> None:
    clock = Clock()
    a = replica(redis_client, redis_prefix, "a", clock)
    b = replica(redis_client, redis_prefix, "b", clock)
    b.acquire(KEY)
    await b.sync()
    await b.leave()
    assert await a.sync() == 1
    assert a.snapshot(KEY).in_flight == 0


class BrokenRedis:
    def register_script(self, script: str):
        async def run(**kwargs):
            raise ConnectionError("redis is down")

        return run


async def test_a_redis_failure_falls_back_to_local_numbers(redis_client, redis_prefix) -> None:
    clock = Clock()
    a = replica(redis_client, redis_prefix, "a", clock)
    b = replica(redis_client, redis_prefix, "b", clock)
    b.acquire(KEY)
    await b.sync()
    await a.sync()
    assert a.snapshot(KEY).in_flight == 1
    a.redis = BrokenRedis()
    a._script = None
    with pytest.raises(ConnectionError):
        await a.sync()
    a._forget_if_stale()
    assert a.snapshot(KEY).in_flight == 1  # the last view holds while it is fresh
    clock.now += 3.0
    a._forget_if_stale()
    assert a.snapshot(KEY).in_flight == 0
    a.acquire(KEY)  # the request path works throughout
    assert a.snapshot(KEY).in_flight == 1
