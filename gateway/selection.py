"""Choosing miners for a request: power-of-two-choices over live stats, then failover order.

Candidates are the task's routes: one per open contender, published by the scoring leader
(``scoring.routes``; only routable contenders of the open period are published), read through a
cache. A miner without a route is never a candidate, nor is a route whose period ended more than
``route_grace_s`` ago (a leader that stopped publishing leaves its last table in Redis until the
key expires). Of these, the candidates are those not cooled down and with fewer requests in
flight than they announced they can serve, in flight counted across every gateway replica (the
live stats are shared: ``core.miners.SharedStats``). The first pick is the better of two
candidates drawn at random (so load spreads instead of herding on the single best miner); the
rest follow in descending score as failover fallbacks.

Score (higher is better)::

    quality × (1 − error_rate) × speed / ((1 + in_flight / concurrency) × (ttft + 0.05 s))

with ``ttft`` the miner's EWMA time to first token (a default of 0.5 s until measured),
``speed`` its EWMA work rate (tokens/s, steps/s) relative to the mean of the candidates'
measured rates, square-rooted and bounded to [0.5, 2] (1 until measured; relative, so the unit
of work does not matter), and ``quality`` the checker's latest score from the route. Ties are
broken at random.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from core.miners import MinerStats
from scoring.routes import MinerRoute

DEFAULT_TTFT_S = 0.5
SPEED_BOUNDS = (0.5, 2.0)

log = logging.getLogger(__name__)


class RouteSource(Protocol):
    async def routes(self, task: str) -> list[MinerRoute]: ...


class RouteCache:
    """Routes served from memory, so no request waits on Redis: the first read of a task
    loads it, then a background loop (``run``) refreshes every known task every
    ``refresh_s``. If a refresh fails the last known routes stay (they expire in Redis anyway
    when the scoring process stops publishing them)."""

    def __init__(self, source: RouteSource, *, refresh_s: float = 1.0) -> None:
        self.source = source
        self.refresh_s = refresh_s
        self._routes: dict[str, list[MinerRoute]] = {}

    async def routes(self, task: str) -> list[MinerRoute]:
        found = self._routes.get(task)
        if found is None:
            found = self._routes[task] = await self.source.routes(task)
        return found

    async def refresh(self) -> None:
        for task in list(self._routes):
            try:
                self._routes[task] = await self.source.routes(task)
            except Exception as exc:  # noqa: BLE001 - keep serving the last known routes
                log.warning("refreshing the routes of %s failed: %s", task, exc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh()


class Selector:
    def __init__(
        self,
        routes: RouteSource,
        stats: MinerStats,
        *,
        rng: random.Random | None = None,
        fallbacks: int = 8,
        route_grace_s: float = 30.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.source = routes
        self.stats = stats
        self.rng = rng or random.Random()
        self.fallbacks = fallbacks
        self.route_grace_s = route_grace_s
        self._wall = wall

    def score(self, route: MinerRoute, mean_rate: float | None = None) -> float:
        snap = self.stats.snapshot((route.task, route.hotkey))
        load = 1.0 + snap.in_flight / max(route.concurrency, 1)
        ttft = (snap.ttft_s if snap.ttft_s is not None else DEFAULT_TTFT_S) + 0.05
        speed = 1.0
        if mean_rate and snap.rate is not None:
            low, high = SPEED_BOUNDS
            speed = min(max(math.sqrt(snap.rate / mean_rate), low), high)
        return max(route.quality, 0.0) * (1.0 - snap.error_rate) * speed / (load * ttft)

    def mean_rate(self, routes: Sequence[MinerRoute]) -> float | None:
        rates = [
            rate
            for route in routes
            if (rate := self.stats.snapshot((route.task, route.hotkey)).rate) is not None
            and rate > 0
        ]
        return sum(rates) / len(rates) if rates else None

    def _free(self, routes: Sequence[MinerRoute], now: float) -> list[tuple[MinerRoute, int]]:
        """The live routes (period not long over, miner not cooled down) and how many more
        requests each can take (its announced concurrency not in flight)."""
        stats = self.stats
        closed_before = self._wall() - self.route_grace_s
        out: list[tuple[MinerRoute, int]] = []
        for route in routes:
            key = (route.task, route.hotkey)
            if not 0 < route.period_end < closed_before and stats.available(key, now):
                out.append((route, route.concurrency - stats.snapshot(key).in_flight))
        return out

    def available(self, routes: Sequence[MinerRoute], now: float) -> list[MinerRoute]:
        return [route for route, free in self._free(routes, now) if free > 0]

    def order(self, routes: Sequence[MinerRoute], now: float | None = None) -> list[MinerRoute]:
        """The candidates in the order to try them (empty: no capacity)."""
        pool = self.available(routes, time.monotonic() if now is None else now)
        if len(pool) <= 1:
            return pool
        rng = self.rng
        mean_rate = self.mean_rate(pool)
        scored = [(self.score(route, mean_rate), rng.random(), i) for i, route in enumerate(pool)]
        a, b = rng.sample(range(len(pool)), 2)
        first = a if scored[a] >= scored[b] else b
        rest = heapq.nlargest(self.fallbacks, (s for s in scored if s[2] != first))
        return [pool[first], *(pool[s[2]] for s in rest)]

    async def candidates(self, task: str) -> list[MinerRoute]:
        return self.order(await self.source.routes(task))

    async def routed(self, task: str) -> bool:
        """Whether any miner serves ``task`` at all (busy or not)."""
        return bool(await self.source.routes(task))

    async def free_slots(self, task: str) -> int:
        """How many more requests the task's miners can take now: the announced concurrency
        not in flight, over the miners not cooled down."""
        routes = await self.source.routes(task)
        return sum(max(0, free) for _, free in self._free(routes, time.monotonic()))
