"""Running the synthetic schedule of a period (``scoring.synthetic.plan``) on the leader.

Every contender's slots come due over the period; each due slot is **claimed** in Redis with one
Lua script on the contender's counter hash (``slots_claimed``), which also subtracts the slots
covered by organic volume. The claim is atomic, so a new leader that takes over mid-period
continues where the old one stopped, and two processes can never send the same slot. A claimed
slot becomes a ``SyntheticRequest`` (``scoring.synthetic``) handed to the ``SyntheticSender``,
which dispatches it like an organic request and records the outcome in the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from protocol.catalog import Catalog
from scoring.contenders import ContenderView, PeriodView
from scoring.counters import ContenderCounters
from scoring.synthetic import SyntheticFactory, SyntheticRequest
from scoring.synthetic.plan import contender_seed, due_count, request_count, slot_times

log = logging.getLogger(__name__)

# KEYS[1] the contender's counter hash; ARGV: slots due, volume per request, TTL (s).
# Returns the claimed slot's index, or -1 when every due slot is claimed or covered.
_CLAIM = """
local claimed = tonumber(redis.call('hget', KEYS[1], 'slots_claimed') or '0')
local organic = tonumber(redis.call('hget', KEYS[1], 'organic_volume') or '0')
local needed = tonumber(ARGV[1]) - math.floor(organic / tonumber(ARGV[2]) + 1e-9)
if claimed < needed then
    redis.call('hincrby', KEYS[1], 'slots_claimed', 1)
    redis.call('expire', KEYS[1], tonumber(ARGV[3]))
    return claimed
end
return -1
"""


class SyntheticSender(Protocol):
    async def send(
        self, period: PeriodView, contender: ContenderView, request: SyntheticRequest
    ) -> None:
        """Dispatch ``request`` to ``contender`` and record the outcome in its counters."""


@dataclass(frozen=True, slots=True)
class ContenderSchedule:
    contender: ContenderView
    volume_per_request: float
    times: list[float]


def schedules(period: PeriodView, catalog: Catalog, *, jitter: float) -> list[ContenderSchedule]:
    plans = []
    for contender in period.contenders:
        task = catalog.get(contender.task)
        if task is None or not contender.routable:
            continue
        count = request_count(contender.quota, task.volume_per_request)
        seed = contender_seed(period.seed, contender.task, contender.hotkey)
        times = slot_times(
            start=period.started_at, period_s=period.period_s, count=count, jitter=jitter, seed=seed
        )
        plans.append(ContenderSchedule(contender, task.volume_per_request, times))
    return plans


class SlotClaims:
    def __init__(self, redis: aioredis.Redis, counters: ContenderCounters) -> None:
        self.redis = redis
        self.counters = counters

    async def claim(self, period: PeriodView, plan: ContenderSchedule, now: float) -> int | None:
        """Claim the next due, uncovered slot of a contender (its index), or None."""
        key = self.counters.key(period.id, plan.contender.task, plan.contender.hotkey)
        ttl = max(int(self.counters.ttl_s), 60)
        due = due_count(plan.times, now)
        result = await self.redis.eval(
            _CLAIM, 1, key, str(due), str(plan.volume_per_request), str(ttl)
        )
        index = int(result)
        return index if index >= 0 else None


class SyntheticScheduler:
    def __init__(
        self,
        *,
        claims: SlotClaims,
        catalog: Catalog,
        factory: SyntheticFactory,
        sender: SyntheticSender,
        jitter: float,
        max_in_flight: int = 64,
        tick_s: float = 1.0,
    ) -> None:
        self.claims = claims
        self.catalog = catalog
        self.factory = factory
        self.sender = sender
        self.jitter = jitter
        self.tick_s = tick_s
        self._limit = asyncio.Semaphore(max_in_flight)

    async def _send(self, period: PeriodView, plan: ContenderSchedule) -> None:
        task = self.catalog.get(plan.contender.task)
        if task is None:
            return
        async with self._limit:
            try:
                await self.sender.send(period, plan.contender, self.factory.make(task))
            except Exception:  # a failed send is the sender's to record; keep scheduling
                log.exception("synthetic request to %s failed", plan.contender.hotkey)

    async def run(self, period: PeriodView, stop: asyncio.Event) -> int:
        """Claim and send due slots until the period ends (or ``stop``); the number claimed."""
        plans = schedules(period, self.catalog, jitter=self.jitter)
        sent = 0
        pending: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set() and (now := time.time()) < period.ends_at:
                for plan in plans:
                    while await self.claims.claim(period, plan, now) is not None:
                        sent += 1
                        job = asyncio.ensure_future(self._send(period, plan))
                        pending.add(job)
                        job.add_done_callback(pending.discard)
                upcoming = [t for plan in plans for t in plan.times if t > now]
                wake = min([*upcoming, period.ends_at])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=max(min(wake - now, self.tick_s), 0.01)
                    )
        finally:
            for job in pending:
                job.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return sent
