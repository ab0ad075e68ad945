"""The routing table: which miners serve which task right now (one entry per open contender).

The scoring process writes it each period (after fetching capacities); gateways read it through
``RouteReader``, which caches each task's routes in-process for a short time so the request path
does not touch Redis per request. This is part of scoring's public read API.
"""

from __future__ import annotations

import time

import msgspec
import redis.asyncio as aioredis


class MinerRoute(msgspec.Struct, frozen=True):
    task: str
    hotkey: str
    uid: int
    url: str
    # Announced for this validator for the period: max in-flight requests and volume.
    concurrency: int
    volume: float
    period_start: float
    # Latest quality from the checker (1.0 until there is evidence).
    quality: float = 1.0
    # The period the contender belongs to: pass it with every counter update
    # (``scoring.counters``), so a late outcome never lands on the next period's contender.
    period_id: int = 0
    period_end: float = 0.0


_ROUTES = msgspec.json.Decoder(list[MinerRoute])


def _key(prefix: str, task: str) -> str:
    return f"{prefix}routes:{task}"


class RouteStore:
    """Writer side (the scoring process)."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "sn19:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def publish(self, task: str, routes: list[MinerRoute], *, ttl_s: float) -> None:
        """Replace the task's routes; they expire if the scoring process stops refreshing them."""
        await self.redis.set(
            _key(self.prefix, task), msgspec.json.encode(routes), px=int(ttl_s * 1000)
        )


class RouteReader:
    """Reader side (gateways): routes per task, cached for ``cache_s`` seconds."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = "sn19:", cache_s: float = 1.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, list[MinerRoute]]] = {}

    async def routes(self, task: str) -> list[MinerRoute]:
        now = time.monotonic()
        cached = self._cache.get(task)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        raw = await self.redis.get(_key(self.prefix, task))
        routes = _ROUTES.decode(raw) if raw else []
        self._cache[task] = (now, routes)
        return routes

    def invalidate(self) -> None:
        self._cache.clear()
