"""Contender counters in Redis: what every dispatch attempt did to a (period, task, miner).

SPEC §3/§6: every dispatch outcome, organic or synthetic, updates the contender's counters
(consumed volume, requests, 429s, failures); organic volume also counts toward the contender's
test quota. The counters live in one Redis hash per contender,
``<prefix>contender:<period id>:<task>:<hotkey>``, updated with atomic ``HINCRBY`` /
``HINCRBYFLOAT`` (one MULTI per write) so every gateway replica and the scoring process add to
the same numbers; the scoring leader flushes them into ``contenders`` when the period closes.

Fields: ``consumed`` (volume of successful requests, task units), ``requests``,
``rate_limited`` (429), ``failed`` (any other failure that is the miner's: connect error,
timeout, 5xx, refused, malformed or broken output), ``organic_volume``, ``organic_requests``,
``synthetic_requests``, and ``slots_claimed`` (synthetic schedule progress, see
``scoring.synthetic.plan``). Cancelled calls (the customer went away) and our own internal
errors are not counted: neither is evidence about the miner.

**For the gateway** (and the synthetic sender), after each attempt on a route::

    counters.record(route.period_id, route.task, route.hotkey, attempt.outcome,
                    volume=units_delivered, organic=True)

``CounterBuffer.record`` is synchronous and never waits on Redis (the request path stays free of
I/O); its ``run()`` task flushes the accumulated increments every ``flush_s`` in one MULTI.
``ContenderCounters.add`` is the direct, awaited form.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.miners.stats import FAILURES, NEUTRAL, Outcome
from core.settings import Settings

log = logging.getLogger(__name__)

FLOAT_FIELDS = ("consumed", "organic_volume")
INT_FIELDS = (
    "requests",
    "rate_limited",
    "failed",
    "organic_requests",
    "synthetic_requests",
    "slots_claimed",
)
ContenderKey = tuple[int, str, str]  # (period id, task, hotkey)


class Counts(msgspec.Struct):
    consumed: float = 0.0
    requests: int = 0
    rate_limited: int = 0
    failed: int = 0
    organic_volume: float = 0.0
    organic_requests: int = 0
    synthetic_requests: int = 0
    slots_claimed: int = 0


def counter_key(prefix: str, period_id: int, task: str, hotkey: str) -> str:
    return f"{prefix}contender:{period_id}:{task}:{hotkey}"


def increments(outcome: Outcome, *, volume: float, organic: bool) -> dict[str, float]:
    """The counter changes one attempt makes (empty: not evidence about the miner)."""
    if outcome in NEUTRAL:
        return {}
    changes: dict[str, float] = {"requests": 1}
    changes["organic_requests" if organic else "synthetic_requests"] = 1
    if outcome is Outcome.OK:
        amount = max(volume, 0.0)
        changes["consumed"] = amount
        if organic:
            changes["organic_volume"] = amount
    elif outcome is Outcome.RATE_LIMITED:
        changes["rate_limited"] = 1
    elif outcome in FAILURES:
        changes["failed"] = 1
    return changes


def _queued(command: object) -> None:
    """A command queued on a pipeline (it returns the pipeline, typed as an awaitable)."""
    del command


def _decode(raw: dict[Any, Any]) -> Counts:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        field = name.decode() if isinstance(name, bytes) else str(name)
        text = value.decode() if isinstance(value, bytes) else str(value)
        if field in FLOAT_FIELDS:
            values[field] = float(text)
        elif field in INT_FIELDS:
            values[field] = int(float(text))
    return Counts(**values)


class ContenderCounters:
    """Atomic counter updates and reads over Redis."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    @classmethod
    def from_settings(cls, redis: aioredis.Redis, settings: Settings) -> ContenderCounters:
        """The counters every process of one validator shares: ``redis.key_prefix``, kept
        long enough (three periods and ten minutes) to be flushed when their period closes."""
        return cls(
            redis, prefix=settings.redis.key_prefix, ttl_s=3 * settings.scoring.period_s + 600
        )

    def key(self, period_id: int, task: str, hotkey: str) -> str:
        return counter_key(self.prefix, period_id, task, hotkey)

    async def add(self, changes: dict[ContenderKey, dict[str, float]]) -> None:
        """Apply increments to several contenders in one MULTI/EXEC."""
        if not changes:
            return
        ttl = max(int(self.ttl_s), 60)
        async with self.redis.pipeline(transaction=True) as pipe:
            for (period_id, task, hotkey), fields in changes.items():
                key = self.key(period_id, task, hotkey)
                for field, amount in fields.items():
                    if field in FLOAT_FIELDS:
                        _queued(pipe.hincrbyfloat(key, field, amount))
                    else:
                        _queued(pipe.hincrby(key, field, int(amount)))
                _queued(pipe.expire(key, ttl))
            await pipe.execute()

    async def record(
        self,
        period_id: int,
        task: str,
        hotkey: str,
        outcome: Outcome,
        *,
        volume: float = 0.0,
        organic: bool,
    ) -> None:
        changes = increments(outcome, volume=volume, organic=organic)
        if changes:
            await self.add({(period_id, task, hotkey): changes})

    async def read(self, period_id: int, task: str, hotkey: str) -> Counts:
        return _decode(await self.redis.hgetall(self.key(period_id, task, hotkey)))

    async def read_many(self, keys: list[ContenderKey]) -> dict[ContenderKey, Counts]:
        if not keys:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for period_id, task, hotkey in keys:
                _queued(pipe.hgetall(self.key(period_id, task, hotkey)))
            rows = await pipe.execute()
        return {key: _decode(row) for key, row in zip(keys, rows, strict=True)}


class CounterBuffer:
    """Synchronous ``record`` for the request path; increments are flushed in the background.

    Increments survive a failed flush (they are retried with the next one), so Redis being
    briefly unreachable loses nothing; only a crash of the process loses the last
    ``flush_s`` of increments."""

    def __init__(self, counters: ContenderCounters, *, flush_s: float = 0.5) -> None:
        self.counters = counters
        self.flush_s = flush_s
        self._pending: dict[ContenderKey, dict[str, float]] = defaultdict(dict)

    def record(
        self,
        period_id: int,
        task: str,
        hotkey: str,
        outcome: Outcome,
        *,
        volume: float = 0.0,
        organic: bool,
    ) -> None:
        changes = increments(outcome, volume=volume, organic=organic)
        if not changes:
            return
        pending = self._pending[(period_id, task, hotkey)]
        for field, amount in changes.items():
            pending[field] = pending.get(field, 0.0) + amount

    async def flush(self) -> None:
        batch, self._pending = dict(self._pending), defaultdict(dict)
        try:
            await self.counters.add(batch)
        except (RedisError, OSError):
            for key, fields in batch.items():  # put them back for the next flush
                pending = self._pending[key]
                for field, amount in fields.items():
                    pending[field] = pending.get(field, 0.0) + amount
            raise

    async def run(self) -> None:
        """Flush every ``flush_s`` until cancelled (then one last flush). A failed flush is
        logged and never ends the loop (Redis errors keep the increments for the next one)."""
        try:
            while True:
                await asyncio.sleep(self.flush_s)
                try:
                    await self.flush()
                except Exception as exc:  # noqa: BLE001 - counting must never stop
                    log.warning("flushing contender counters failed (%s); will retry", exc)
        finally:
            with contextlib.suppress(Exception):
                await self.flush()
