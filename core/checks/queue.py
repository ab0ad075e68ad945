"""The check queue: a Redis Stream read by a consumer group of checker workers.

Producers (the gateway's organic sampler, the synthetic sender) call ``enqueue``; workers
``read`` new entries, ``reclaim`` entries a dead worker left pending, ``touch`` the ones they
are still working on, and ``ack`` an entry only after its result is stored, so a worker that
dies mid-job loses nothing: its entries stay pending until another worker reclaims them. An
entry delivered more than ``max_deliveries`` times (a job that keeps killing workers) is moved
to the dead-letter stream by the worker, which also scores it 0.

Keys (``prefix`` is ``redis.key_prefix``): ``<prefix>checks:jobs`` (the stream, trimmed to
about ``maxlen`` entries), ``<prefix>checks:dead`` (dead letters, about 10,000 kept); the
group is ``checkers``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from core.checks.jobs import CheckJob, MissingResponse, encode_job
from core.settings import Settings

DEFAULT_MAXLEN = 100_000
DEFAULT_MAX_JOB_BYTES = 64 * 1024 * 1024
DEAD_MAXLEN = 10_000
GROUP = "checkers"
FIELD = b"job"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to a worker. ``data`` is None when the entry was trimmed from
    the stream while pending; ``deliveries`` counts this delivery."""

    entry_id: str
    data: bytes | None
    deliveries: int


@dataclass(frozen=True, slots=True)
class QueueDepth:
    length: int  # entries in the stream (delivered or not, until trimmed)
    pending: int  # delivered to a worker, not yet acknowledged
    lag: int | None  # entries never delivered (Redis 7+; None where unknown)
    dead: int  # entries in the dead-letter stream


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CheckQueue:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "sn19:",
        group: str = GROUP,
        maxlen: int = DEFAULT_MAXLEN,
        max_job_bytes: int = DEFAULT_MAX_JOB_BYTES,
    ) -> None:
        self.redis = redis
        self.stream = f"{prefix}checks:jobs"
        self.dead_stream = f"{prefix}checks:dead"
        self.group = group
        self.maxlen = maxlen
        self.max_job_bytes = max_job_bytes

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> CheckQueue:
        """The queue as a process's settings name it (``redis.key_prefix``, ``checker.*``)."""
        return cls(
            redis,
            prefix=settings.redis.key_prefix,
            maxlen=settings.checker.queue_maxlen,
            max_job_bytes=settings.checker.max_job_bytes,
        )

    # -- producers ------------------------------------------------------------------------------

    async def enqueue(self, job: CheckJob) -> str:
        """Add a job; returns its stream entry id. A job over ``max_job_bytes`` is enqueued
        without its request and response (the checker scores it 0 with the reason)."""
        data = encode_job(job)
        if len(data) > self.max_job_bytes:
            reason = f"job of {len(data)} bytes is over the check queue's {self.max_job_bytes}"
            data = encode_job(
                msgspec.structs.replace(job, request=b"", response=MissingResponse(reason=reason))
            )
        entry = await self.redis.xadd(
            self.stream, {FIELD: data}, maxlen=self.maxlen, approximate=True
        )
        return _text(entry)

    # -- consumers ------------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; new groups start at the
        beginning of the stream, so jobs enqueued before the first worker are not lost."""
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)

    async def read(self, consumer: str, *, count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` entries never delivered before, waiting up to ``block_ms``."""
        try:
            reply: Any = await self.redis.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=count, block=block_ms or None
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        deliveries: list[Delivery] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                deliveries.append(Delivery(_text(entry_id), _field(fields), 1))
        return deliveries

    async def reclaim(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over up to ``count`` entries pending longer than ``min_idle_ms`` (their worker
        died or hangs), with their delivery counts (this delivery included)."""
        try:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, consumer, min_idle_ms, start_id="0-0", count=count
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        entries = reply[1] if len(reply) > 1 else []
        deleted = [_text(entry) for entry in reply[2]] if len(reply) > 2 else []
        claimed: list[tuple[str, bytes | None]] = [
            (_text(entry_id), _field(fields)) for entry_id, fields in entries
        ]
        claimed.extend((entry_id, None) for entry_id in deleted)
        deliveries: list[Delivery] = []
        for entry_id, data in claimed:
            deliveries.append(Delivery(entry_id, data, await self._delivery_count(entry_id)))
        return deliveries

    async def _delivery_count(self, entry_id: str) -> int:
        rows = await self.redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        if not rows:
            return 1
        return int(rows[0].get("times_delivered", 1))

    async def touch(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries this worker is still checking (no delivery count
        change), so nobody reclaims a slow job from a live worker."""
        if entry_ids:
            ids: list[Any] = list(entry_ids)
            await self.redis.xclaim(self.stream, self.group, consumer, 0, ids, justid=True)

    async def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move an entry to the dead-letter stream (with why) and acknowledge it."""
        await self.redis.xadd(
            self.dead_stream,
            {
                FIELD: delivery.data or b"",
                b"reason": reason.encode()[:4096],
                b"entry": delivery.entry_id.encode(),
                b"deliveries": str(delivery.deliveries).encode(),
            },
            maxlen=DEAD_MAXLEN,
            approximate=True,
        )
        await self.ack(delivery.entry_id)

    # -- metrics --------------------------------------------------------------------------------

    async def depth(self) -> QueueDepth:
        length = int(await self.redis.xlen(self.stream))
        dead = int(await self.redis.xlen(self.dead_stream))
        pending = 0
        lag: int | None = None
        with contextlib.suppress(ResponseError):
            for group in await self.redis.xinfo_groups(self.stream):
                if _text(group.get("name")) == self.group:
                    pending = int(group.get("pending") or 0)
                    raw_lag = group.get("lag")
                    lag = None if raw_lag is None else int(raw_lag)
        return QueueDepth(length=length, pending=pending, lag=lag, dead=dead)


def _field(fields: Any) -> bytes | None:
    if not fields:
        return None
    value = fields.get(FIELD)
    if value is None:
        value = fields.get(FIELD.decode())
    return bytes(value) if value is not None else None
