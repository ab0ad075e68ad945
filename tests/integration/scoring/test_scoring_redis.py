"""Shared state on a real Redis: contender counters, the leader lock, synthetic slot claims."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from redis.asyncio import Redis

from core.miners.stats import Outcome
from scoring.contenders import ContenderView, PeriodView
from scoring.counters import ContenderCounters, CounterBuffer, Counts
from scoring.leader import LeaderLock, Leadership
from scoring.synthetic import SeedRange, SyntheticFactory
from scoring.synthetic.claims import SlotClaims, SyntheticScheduler, schedules

pytestmark = pytest.mark.redis
CHAT = "sn19-tiny-chat"


def counters(redis: Redis, prefix: str) -> ContenderCounters:
    return ContenderCounters(redis, prefix=prefix, ttl_s=600)


async def test_counters_are_atomic_across_writers(redis_client: Redis, redis_prefix: str) -> None:
    store = counters(redis_client, redis_prefix)
    buffers = [CounterBuffer(store) for _ in range(4)]
    for index in range(400):
        buffer = buffers[index % 4]
        outcome = (Outcome.OK, Outcome.RATE_LIMITED, Outcome.TIMEOUT, Outcome.CANCELLED)[index % 4]
        buffer.record(1, CHAT, "5M", outcome, volume=10, organic=index % 8 == 0)
    await asyncio.gather(
        *(store.record(1, CHAT, "5M", Outcome.OK, volume=2.5, organic=False) for _ in range(50))
    )
    await asyncio.gather(*(buffer.flush() for buffer in buffers))
    got = await store.read(1, CHAT, "5M")
    assert got == Counts(
        consumed=100 * 10 + 50 * 2.5,
        requests=300 + 50,
        rate_limited=100,
        failed=100,
        organic_volume=50 * 10,
        organic_requests=50,
        synthetic_requests=250 + 50,
    )
    assert await store.read(2, CHAT, "5M") == Counts()  # another period: separate counters
    many = await store.read_many([(1, CHAT, "5M"), (1, CHAT, "5X")])
    assert many[(1, CHAT, "5X")] == Counts() and many[(1, CHAT, "5M")] == got
    assert 0 < await redis_client.ttl(store.key(1, CHAT, "5M")) <= 600


async def test_buffer_keeps_increments_when_a_flush_fails(
    redis_client: Redis, redis_prefix: str
) -> None:
    store = counters(redis_client, redis_prefix)
    buffer = CounterBuffer(store, flush_s=0.01)
    buffer.record(1, CHAT, "5M", Outcome.OK, volume=5, organic=True)
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    buffer.counters = ContenderCounters(broken, prefix=redis_prefix, ttl_s=60)
    with pytest.raises(Exception):  # noqa: B017 - whatever the connection error is
        await buffer.flush()
    await broken.aclose()
    buffer.counters = store
    runner = asyncio.ensure_future(buffer.run())
    await asyncio.sleep(0.05)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert (await store.read(1, CHAT, "5M")).consumed == 5


async def test_lock_token_semantics(redis_client: Redis, redis_prefix: str) -> None:
    key = redis_prefix + "leader"
    one = LeaderLock(redis_client, key, ttl_s=1.0, token="one")
    two = LeaderLock(redis_client, key, ttl_s=1.0, token="two")
    assert await one.try_acquire()
    assert not await two.try_acquire()
    assert not await two.renew() and not await two.release()  # never someone else's lock
    assert await one.renew() and await one.holder() == "one"
    await asyncio.sleep(1.2)  # expired: the other may take it
    assert not await one.renew()
    assert await two.try_acquire()
    assert not await one.release() and await two.holder() == "two"
    assert await two.release() and await one.holder() is None


async def test_losing_the_lock_stops_the_work_at_once(
    redis_client: Redis, redis_prefix: str
) -> None:
    key = redis_prefix + "leader"
    leadership = Leadership(
        LeaderLock(redis_client, key, ttl_s=0.6, token="me"), poll_s=0.05, ttl_s=0.6
    )
    stop = asyncio.Event()
    runs: list[str] = []

    async def work() -> None:
        runs.append("started")
        try:
            await stop.wait()  # work returns when stopped (the runner's does)
        except asyncio.CancelledError:
            runs.append("cancelled")
            raise

    task = asyncio.ensure_future(leadership.lead(stop, work))
    await asyncio.sleep(0.3)
    assert runs == ["started"] and leadership.is_leader
    await redis_client.set(key, "usurper", px=800)  # someone else holds it now
    await asyncio.sleep(0.4)  # the next renewal (every ttl/3) notices
    assert runs == ["started", "cancelled"] and not leadership.is_leader
    await asyncio.sleep(0.8)  # the usurper's lock expires; we take over again
    assert runs == ["started", "cancelled", "started"]
    stop.set()
    await asyncio.wait_for(task, 2)
    assert await redis_client.get(key) is None  # released on shutdown


def period(contenders: tuple[ContenderView, ...], *, start: float, length: float) -> PeriodView:
    return PeriodView(
        id=5,
        started_at=start,
        ends_at=start + length,
        period_s=length,
        seed=99,
        contenders=contenders,
    )


def contender(hotkey: str, quota: float) -> ContenderView:
    return ContenderView(1, CHAT, hotkey, 1, "http://x", 10_000, 4, 0.04, quota)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, period, contender, request) -> None:
        self.sent.append((contender.hotkey, request.path))


async def test_two_schedulers_never_send_the_same_slot(
    redis_client: Redis, redis_prefix: str, dev_catalog
) -> None:
    store = counters(redis_client, redis_prefix)
    claims = SlotClaims(redis_client, store)
    # quotas: 3000 → 10 requests of 300, 600 → 2 requests
    live = period(
        (contender("5Big", 3000), contender("5Small", 600)), start=time.time() - 0.01, length=1.5
    )
    recorders = [Recorder(), Recorder()]
    schedulers = [
        SyntheticScheduler(
            claims=claims,
            catalog=dev_catalog,
            factory=SyntheticFactory(SeedRange(0), rng=random.Random(i)),
            sender=recorders[i],
            jitter=0.25,
            tick_s=0.02,
        )
        for i in range(2)
    ]
    stop = asyncio.Event()
    counts = await asyncio.gather(*(s.run(live, stop) for s in schedulers))
    sent = recorders[0].sent + recorders[1].sent
    assert sum(counts) == len(sent) == 12
    assert sorted(h for h, _ in sent).count("5Big") == 10
    assert (await store.read(5, CHAT, "5Small")).slots_claimed == 2
    assert all(recorders)  # both processes sent some: they really competed


async def test_organic_volume_replaces_synthetic_slots(
    redis_client: Redis, redis_prefix: str, dev_catalog
) -> None:
    store = counters(redis_client, redis_prefix)
    claims = SlotClaims(redis_client, store)
    live = period((contender("5M", 3000),), start=time.time() - 100, length=10)  # all 10 due
    (plan,) = schedules(live, dev_catalog, jitter=0.0)
    await store.record(5, CHAT, "5M", Outcome.OK, volume=1300, organic=True)  # covers 4 slots
    claimed = []
    while (slot := await claims.claim(live, plan, time.time())) is not None:
        claimed.append(slot)
    assert claimed == [0, 1, 2, 3, 4, 5]
    await store.record(5, CHAT, "5M", Outcome.OK, volume=3000, organic=True)
    assert await claims.claim(live, plan, time.time()) is None
