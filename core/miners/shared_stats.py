"""Live miner stats shared by every gateway replica through Redis (SPEC §3).

``SharedStats`` is a ``MinerStats`` whose request path is the in-process one: ``acquire``,
``release``, ``snapshot`` and ``available`` read and write this replica's ``InProcessStats`` plus
an in-memory view of the other replicas, and never touch Redis. A background loop (``run``,
started in the gateway's lifespan) calls ``sync`` every ``interval_s``: one Lua script writes this
replica's numbers as one msgpack blob (``<prefix>stats:r:<replica>``, expiring after ``ttl_s``),
registers the replica in a sorted set, drops replicas not seen for ``ttl_s``, and returns every
other live replica's blob. One round trip per sync, whatever the number of miners.

Merging, per ``(task, hotkey)``:

- in flight: this replica's live count plus the others' last published counts (so a miner's
  announced concurrency is checked against the whole cluster's load, within one sync interval);
- EWMA time to first token, EWMA work rate and error rate: averages weighted by each replica's
  recent evidence, ``min(requests, window) × 0.5^(age / half_life_s)`` (``window`` = the EWMA's
  own horizon, ``1 / alpha``; ``age``: time since that replica's last outcome for the miner), so a
  replica that served a miner a lot an hour ago does not outweigh one that saw it fail now;
- cool-down: the latest deadline any replica set (sent as seconds left, so replica clocks need
  not agree), and the largest consecutive-failure count: a miner cooled down by one replica is
  skipped by all of them from their next sync on.

A replica that dies stops refreshing its blob: it expires after ``ttl_s`` and its in-flight
requests stop counting. A Redis failure leaves the last merged view in place (it decays to this
replica's own numbers once it is older than ``ttl_s``) and is logged, never raised to a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from core.miners.stats import InProcessStats, MinerKey, MinerSnapshot, Outcome

log = logging.getLogger(__name__)

# KEYS[1]: the replicas' sorted set; KEYS[2]: this replica's blob.
# ARGV: replica id, now (ms), ttl (ms), blob, blob key prefix.
_SYNC = """
redis.call('set', KEYS[2], ARGV[4], 'px', ARGV[3])
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
redis.call('zadd', KEYS[1], now, ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', now - ttl)
redis.call('pexpire', KEYS[1], ttl * 4)
local out = {}
for _, id in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do
    if id ~= ARGV[1] then
        local blob = redis.call('get', ARGV[5] .. id)
        if blob then out[#out + 1] = blob end
    end
end
return out
"""


class Published(msgspec.Struct, array_like=True):
    """One miner's numbers as one replica publishes them."""

    task: str
    hotkey: str
    in_flight: int
    ttft_s: float | None
    rate: float | None
    error_rate: float
    requests: int
    weight: float  # the replica's recent evidence (see the module docstring)
    cooldown_left_s: float
    consecutive_failures: int


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Published])


class _Remote:
    """The other replicas' numbers for one miner, summed for merging."""

    __slots__ = (
        "consecutive_failures",
        "cooldown_until",
        "error_sum",
        "in_flight",
        "rate_sum",
        "rate_weight",
        "requests",
        "ttft_sum",
        "ttft_weight",
        "weight",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests = 0
        self.weight = 0.0
        self.error_sum = 0.0
        self.ttft_sum = 0.0
        self.ttft_weight = 0.0
        self.rate_sum = 0.0
        self.rate_weight = 0.0
        self.cooldown_until = 0.0
        self.consecutive_failures = 0

    def add(self, item: Published, now: float) -> None:
        self.in_flight += max(item.in_flight, 0)
        self.requests += max(item.requests, 0)
        weight = max(item.weight, 0.0)
        self.weight += weight
        self.error_sum += weight * item.error_rate
        if item.ttft_s is not None:
            self.ttft_sum += weight * item.ttft_s
            self.ttft_weight += weight
        if item.rate is not None:
            self.rate_sum += weight * item.rate
            self.rate_weight += weight
        if item.cooldown_left_s > 0:
            self.cooldown_until = max(self.cooldown_until, now + item.cooldown_left_s)
        self.consecutive_failures = max(self.consecutive_failures, item.consecutive_failures)


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _mean(own: float | None, own_weight: float, total: float, weight: float) -> float | None:
    if own is not None and own_weight > 0:
        total += own * own_weight
        weight += own_weight
    if weight > 0:
        return total / weight
    return own


class SharedStats:
    """``MinerStats`` over this replica's ``InProcessStats`` and the others' published numbers."""

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "sn19:",
        local: InProcessStats | None = None,
        replica: str | None = None,
        interval_s: float = 0.5,
        ttl_s: float | None = None,
        half_life_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.local = local or InProcessStats(clock=clock)
        self.replica = replica or default_replica_id()
        self.interval_s = interval_s
        self.ttl_s = ttl_s if ttl_s is not None else max(3 * interval_s, 2.0)
        self.half_life_s = half_life_s
        self._clock = clock
        self._wall = wall
        self._zset = f"{prefix}stats:replicas"
        self._blob_prefix = f"{prefix}stats:r:"
        self._script: Any = None
        self._remote: dict[MinerKey, _Remote] = {}
        self._merged: dict[MinerKey, MinerSnapshot] = {}
        self._synced_at = 0.0
        self.replicas_seen = 0
        self.sync_failures = 0

    # MinerStats: the request path, in memory only ---------------------------------------------

    def snapshot(self, key: MinerKey) -> MinerSnapshot:
        remote = self._remote.get(key)
        if remote is None:
            return self.local.snapshot(key)
        merged = self._merged.get(key)
        if merged is None:
            merged = self._merged[key] = self._merge(key, remote)
        return merged

    def available(self, key: MinerKey, now: float) -> bool:
        if not self.local.available(key, now):
            return False
        remote = self._remote.get(key)
        return remote is None or remote.cooldown_until <= now

    def acquire(self, key: MinerKey) -> None:
        self.local.acquire(key)
        self._merged.pop(key, None)

    def release(
        self,
        key: MinerKey,
        outcome: Outcome,
        *,
        ttft_s: float | None = None,
        units: float = 0.0,
        duration_s: float | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.local.release(
            key,
            outcome,
            ttft_s=ttft_s,
            units=units,
            duration_s=duration_s,
            retry_after_s=retry_after_s,
        )
        self._merged.pop(key, None)

    def _weight(self, entry: MinerSnapshot, now: float, alpha: float) -> float:
        if entry.requests <= 0:
            return 0.0
        window = 1.0 / alpha if alpha > 0 else float(entry.requests)
        age = max(now - entry.updated_at, 0.0)
        decay: float = 0.5 ** (age / self.half_life_s)
        return min(float(entry.requests), window) * decay

    def _merge(self, key: MinerKey, remote: _Remote) -> MinerSnapshot:
        own = self.local.snapshot(key)
        now = self._clock()
        weight = self._weight(own, now, self.local.alpha)
        merged = own.copy()
        merged.in_flight = own.in_flight + remote.in_flight
        merged.requests = own.requests + remote.requests
        merged.ttft_s = _mean(own.ttft_s, weight, remote.ttft_sum, remote.ttft_weight)
        merged.rate = _mean(own.rate, weight, remote.rate_sum, remote.rate_weight)
        total = remote.weight + weight
        if total > 0:
            merged.error_rate = (own.error_rate * weight + remote.error_sum) / total
        merged.cooldown_until = max(own.cooldown_until, remote.cooldown_until)
        merged.consecutive_failures = max(own.consecutive_failures, remote.consecutive_failures)
        return merged

    # Sharing: the background loop -------------------------------------------------------------

    def published(self) -> list[Published]:
        """This replica's numbers, for the miners it has anything to say about."""
        now = self._clock()
        alpha = self.local.alpha
        out: list[Published] = []
        for (task, hotkey), entry in self.local.entries():
            left = max(entry.cooldown_until - now, 0.0)
            if entry.in_flight <= 0 and entry.requests <= 0 and left <= 0:
                continue
            out.append(
                Published(
                    task=task,
                    hotkey=hotkey,
                    in_flight=entry.in_flight,
                    ttft_s=entry.ttft_s,
                    rate=entry.rate,
                    error_rate=entry.error_rate,
                    requests=entry.requests,
                    weight=self._weight(entry, now, alpha),
                    cooldown_left_s=left,
                    consecutive_failures=entry.consecutive_failures,
                )
            )
        return out

    async def sync(self) -> int:
        """Publish this replica's numbers and merge the others'; returns the replicas seen."""
        if self._script is None:
            self._script = self.redis.register_script(_SYNC)
        blob = _ENCODER.encode(self.published())
        blobs = await self._script(
            keys=[self._zset, self._blob_prefix + self.replica],
            args=[
                self.replica,
                int(self._wall() * 1000),
                int(self.ttl_s * 1000),
                blob,
                self._blob_prefix,
            ],
        )
        now = self._clock()
        remote: dict[MinerKey, _Remote] = {}
        for raw in blobs or ():
            try:
                items = _DECODER.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # another version's format: skip that replica
            for item in items:
                key = (item.task, item.hotkey)
                entry = remote.get(key)
                if entry is None:
                    entry = remote[key] = _Remote()
                entry.add(item, now)
        self._remote = remote
        self._merged = {}
        self._synced_at = now
        self.replicas_seen = len(blobs or ()) + 1
        return self.replicas_seen

    def _forget_if_stale(self) -> None:
        if self._remote and self._clock() - self._synced_at > self.ttl_s:
            self._remote = {}
            self._merged = {}

    async def run(self) -> None:
        """Sync every ``interval_s`` until cancelled; failures are logged and retried."""
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the request path must not notice
                self.sync_failures += 1
                self._forget_if_stale()
                if self.sync_failures in (1, 10) or self.sync_failures % 1000 == 0:
                    log.warning("sharing miner stats failed (%d): %s", self.sync_failures, exc)
            await asyncio.sleep(self.interval_s)

    async def leave(self) -> None:
        """Remove this replica's numbers now (a clean shutdown)."""
        try:
            async with asyncio.timeout(1.0):
                await self.redis.delete(self._blob_prefix + self.replica)
                await self.redis.zrem(self._zset, self.replica)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway; the blob expires
            log.debug("leaving the shared stats failed: %s", exc)
