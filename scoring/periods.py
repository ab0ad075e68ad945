"""Periods: at each start, sync the metagraph, fetch capacities, open a contender per (miner,
task), close the previous period with its scores, and publish the routes (SPEC §6).

The period lives in the database (``periods``/``contenders``) and its counters in Redis
(``scoring.counters``), so a leader that takes over **continues** the open period: same
contenders, same quotas, same schedule; it only opens the next one when this one has ended.
An open period with no contender (no miner answered) is retried after
``scoring.empty_period_retry_s`` instead of waiting a whole period.

When the chain is unreachable at a period start, the last synced metagraph (``nodes``) is used
so miners are still asked for capacities; with no metagraph at all, the start is retried with
backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import timedelta

from core.chain import ChainUnavailable, Metagraph
from core.db import Database, utcnow
from core.miners.client import MinerClient
from core.settings import Settings
from protocol.catalog import Catalog
from scoring import store
from scoring.backoff import Backoff, sleep_or_stop
from scoring.contenders import PeriodView, plan_contenders, routes_for
from scoring.counters import ContenderCounters, Counts
from scoring.discovery import fetch_capacities
from scoring.health import MinerHealthProbe
from scoring.metrics import ScoringMetrics
from scoring.routes import MinerRoute, RouteStore
from scoring.sync import MetagraphSync

log = logging.getLogger(__name__)

# Routes show the mean check quality of this window (routing wants recent evidence).
ROUTE_QUALITY_WINDOW_S = 6 * 3600.0


class PeriodManager:
    def __init__(
        self,
        *,
        db: Database,
        sync: MetagraphSync,
        client: MinerClient,
        catalog: Catalog,
        counters: ContenderCounters,
        routes: RouteStore,
        settings: Settings,
        self_hotkey: str,
        opened_by: str,
        backoff: Backoff,
        rng: random.Random | None = None,
        health: MinerHealthProbe | None = None,
        metrics: ScoringMetrics | None = None,
    ) -> None:
        self.db = db
        self.sync = sync
        self.client = client
        self.catalog = catalog
        self.counters = counters
        self.routes = routes
        self.settings = settings
        self.self_hotkey = self_hotkey
        self.opened_by = opened_by
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.health = health
        self.metrics = metrics or ScoringMetrics()
        self._degraded: set[tuple[str, str]] = set()

    @property
    def period_s(self) -> float:
        return self.settings.scoring.period_s

    def expired(self, period: PeriodView, now: float) -> bool:
        if now >= period.ends_at:
            return True
        empty = not any(c.routable for c in period.contenders)
        return empty and now - period.started_at >= self.settings.scoring.empty_period_retry_s

    async def metagraph(self, stop: asyncio.Event) -> Metagraph | None:
        """Fresh from the chain, else the last synced one; retried with backoff if neither."""
        self.backoff.reset()
        while not stop.is_set():
            try:
                metagraph, _ = await self.sync.sync_once()
                return metagraph
            except ChainUnavailable as exc:
                known = await self.sync.known()
                if known is not None:
                    log.warning(
                        "period start: chain unreachable (%s); using the metagraph synced at "
                        "block %d",
                        exc,
                        known.block,
                    )
                    return known
                delay = self.backoff.next_delay()
                log.warning(
                    "period start: chain unreachable and no metagraph synced yet (%s); "
                    "retrying in %.1fs",
                    exc,
                    delay,
                )
                if await sleep_or_stop(stop, delay):
                    return None
        return None

    async def advance(self, stop: asyncio.Event) -> PeriodView | None:
        """The period to work in: the open one if it is still running, else a new one (the old
        one closed). None when stopped first."""
        current = await store.open_period(self.db)
        if current is not None and not self.expired(current, time.time()):
            return current
        metagraph = await self.metagraph(stop)
        if metagraph is None:
            return None
        answers = await fetch_capacities(
            self.client,
            metagraph,
            self.catalog,
            self_hotkey=self.self_hotkey,
            period_s=self.period_s,
            timeout=self.settings.scoring.capacity_timeout_s,
        )
        seed = self.rng.getrandbits(62)
        plans = plan_contenders(
            answers,
            self.catalog,
            rng=random.Random(seed),
            quota_scale=self.settings.scoring.quota_scale,
        )
        counts: dict[tuple[str, str], Counts] = {}
        if current is not None:
            keys = [(current.id, c.task, c.hotkey) for c in current.contenders]
            read = await self.counters.read_many(keys)
            counts = {(task, hotkey): value for (_, task, hotkey), value in read.items()}
        opened = await store.rotate(
            self.db,
            closing=current,
            counts=counts,
            plans=plans,
            now=time.time(),
            period_s=self.period_s,
            seed=seed,
            opened_by=self.opened_by,
            block=metagraph.block,
        )
        if opened is None:  # another process rotated first: work in its period
            log.warning("period %s was closed by another process", current.id if current else "")
            return await store.open_period(self.db)
        if current is not None:
            log.info("period %d closed (%d contenders scored)", current.id, len(current.contenders))
        routable = sum(1 for c in opened.contenders if c.routable)
        log.info(
            "period %d opened: %d contenders (%d routable) from %d miners answering, until %s",
            opened.id,
            len(opened.contenders),
            routable,
            sum(1 for a in answers if a.response is not None),
            time.strftime("%H:%M:%S", time.localtime(opened.ends_at)),
        )
        return opened

    async def _healthy(self, routes: dict[str, list[MinerRoute]]) -> dict[str, list[MinerRoute]]:
        """The routes less those whose miner reports their task degraded (``scoring.health``);
        a change in who is left out is logged once."""
        if self.health is None:
            return routes
        degraded = await self.health.degraded(r.url for rs in routes.values() for r in rs)
        left_out = {
            (route.task, route.hotkey)
            for rs in routes.values()
            for route in rs
            if route.task in degraded.get(route.url, ())
        }
        for task, hotkey in sorted(left_out - self._degraded):
            log.warning("miner %s reports %s degraded: not routed until it recovers", hotkey, task)
        for task, hotkey in sorted(self._degraded - left_out):
            log.info("miner %s serves %s again (or no longer reports it degraded)", hotkey, task)
        self._degraded = left_out
        return {
            task: [r for r in rs if (r.task, r.hotkey) not in left_out]
            for task, rs in routes.items()
        }

    async def publish_routes(self, period: PeriodView) -> dict[str, int]:
        since = utcnow() - timedelta(
            seconds=min(ROUTE_QUALITY_WINDOW_S, self.settings.scoring.quality_window_s)
        )
        quality = await store.mean_quality(self.db, since)
        routes = await self._healthy(routes_for(period, self.catalog, quality))
        ttl = 2 * self.period_s + 30
        for task_id, task_routes in routes.items():
            await self.routes.publish(task_id, task_routes, ttl_s=ttl)
        counts = {task_id: len(task_routes) for task_id, task_routes in routes.items()}
        enabled = (task.id for task in self.catalog.enabled())
        self.metrics.published(enabled, counts, time.time())
        return counts
