"""`sn19 scoring`: the validator loop's process (composition root: ``run(settings)``).

Any number of these processes may run against the same Postgres and Redis; one leads (a Redis
lock, ``scoring.leader``), the others stand by and take over within seconds when it dies. The
leader runs, concurrently:

- the period loop (``scoring.periods``): continue the open period or open the next one (metagraph
  sync, capacities, contenders, closing the last period with its scores), publish the routes,
  re-publish them every ``scoring.routes_refresh_s`` (less the tasks miners report degraded on
  ``/healthz``: ``scoring.health``), and run the synthetic schedule
  (``scoring.synthetic.claims``) through the sender (``scoring.synthetic.sender``, unless
  ``scoring.synthetic_enabled`` is off);
- the metagraph sync every ``chain.sync_interval_s`` (``scoring.sync``);
- the weight setter on the chain's cadence (``scoring.onchain``);
- pruning of rows older than ``scoring.retention_days``.

A chain that cannot be reached is logged and retried with backoff; it never ends the process.
Losing the lock cancels all of it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from core.chain import Chain, chain_from_settings
from core.checks import CheckQueue
from core.db import Database
from core.miners import Dispatcher, InProcessStats, MinerStats
from core.miners.client import MinerClient
from core.miners.live import start_live_stats
from core.miners.rawhttp import RawMinerClient
from core.miners.waiting import OrganicWaiting
from core.redis import create_redis
from core.settings import Settings
from core.tokens import load_task_counters
from core.wallet import load_signer
from protocol.catalog import Catalog, resolve_catalog
from scoring import store
from scoring.backoff import Backoff, sleep_or_stop
from scoring.contenders import PeriodView
from scoring.counters import ContenderCounters
from scoring.health import MinerHealthProbe
from scoring.leader import LeaderLock, Leadership, instance_token
from scoring.metrics import ScoringMetrics, serve_metrics
from scoring.onchain import WeightSetter
from scoring.periods import PeriodManager
from scoring.routes import RouteStore
from scoring.sync import MetagraphSync
from scoring.synthetic import SeedRange, SyntheticFactory
from scoring.synthetic.claims import SlotClaims, SyntheticScheduler, SyntheticSender
from scoring.synthetic.sender import MinerSender

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
RESTART_DELAY_S = 5.0


class ScoringLoop:
    """What the leader runs (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        chain: Chain,
        periods: PeriodManager,
        sync: MetagraphSync,
        weights: WeightSetter,
        claims: SlotClaims,
        catalog: Catalog,
        self_hotkey: str,
        sender: SyntheticSender | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.chain = chain
        self.periods = periods
        self.sync = sync
        self.weights = weights
        self.claims = claims
        self.catalog = catalog
        self.self_hotkey = self_hotkey
        self.sender = sender

    async def lead(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.period_loop(stop))
            group.create_task(self.sync_loop(stop))
            group.create_task(self.weights.run(stop))
            group.create_task(self.prune_loop(stop))

    async def sync_loop(self, stop: asyncio.Event) -> None:
        # Each period start syncs too; this keeps nodes fresh between starts.
        interval = self.settings.chain.sync_interval_s
        while not await sleep_or_stop(stop, interval):
            await self.sync.sync(stop)

    async def prune_loop(self, stop: asyncio.Event) -> None:
        retention = self.settings.scoring.retention_days * 86400
        while not await sleep_or_stop(stop, PRUNE_EVERY_S):
            removed = await store.prune(self.db, older_than_s=retention)
            if removed:
                log.info("pruned %d rows older than %.1f days", removed, retention / 86400)

    async def _scheduler(self) -> SyntheticScheduler | None:
        if self.sender is None:
            return None
        metagraph = await self.sync.known()
        me = metagraph.by_hotkey(self.self_hotkey) if metagraph is not None else None
        if me is None:
            log.warning("synthetic traffic paused: this validator has no uid (not registered)")
            return None
        return SyntheticScheduler(
            claims=self.claims,
            catalog=self.catalog,
            factory=SyntheticFactory(SeedRange(me.uid)),
            sender=self.sender,
            jitter=self.settings.scoring.synthetic_jitter,
        )

    async def period_loop(self, stop: asyncio.Event) -> None:
        seen: int | None = None
        while not stop.is_set():
            period = await self.periods.advance(stop)
            if period is None:
                return
            counts = await self.periods.publish_routes(period)
            if period.id != seen:
                log.info("working in period %d; routes published: %s", period.id, counts)
                seen = period.id
            scheduler = await self._scheduler()
            schedule = (
                asyncio.ensure_future(scheduler.run(period, stop))
                if scheduler is not None
                else None
            )
            try:
                await self._until_expired(period, stop)
            finally:
                if schedule is not None:
                    schedule.cancel()
                    await asyncio.gather(schedule, return_exceptions=True)

    async def _until_expired(self, period: PeriodView, stop: asyncio.Event) -> None:
        """Re-publish the routes every ``routes_refresh_s`` until the period has expired."""
        refresh = self.settings.scoring.routes_refresh_s
        retry = self.settings.scoring.empty_period_retry_s
        while not stop.is_set():
            now = time.time()
            if self.periods.expired(period, now):
                return
            empty = not any(c.routable for c in period.contenders)
            until = min(period.ends_at, period.started_at + retry) if empty else period.ends_at
            if await sleep_or_stop(stop, min(refresh, max(until - now, 0.05))):
                return
            if not self.periods.expired(period, time.time()):
                await self.periods.publish_routes(period)


async def synthetic_sender(
    settings: Settings,
    catalog: Catalog,
    *,
    client: MinerClient,
    redis: Any,
    counters: ContenderCounters,
    stats: MinerStats | None = None,
) -> MinerSender:
    """The real sender: the gateway's dispatch code over ``client``, checks to the queue."""
    gateway = settings.gateway
    return MinerSender(
        dispatcher=Dispatcher(
            client,
            stats
            or InProcessStats(
                cooldown_base_s=gateway.cooldown_base_s, cooldown_max_s=gateway.cooldown_max_s
            ),
        ),
        catalog=catalog,
        counters=counters,
        queue=CheckQueue.from_settings(redis, settings),
        token_counters=await asyncio.to_thread(load_task_counters, catalog),
        organic=OrganicWaiting(redis, settings.redis.key_prefix),
        defer_s=settings.scoring.synthetic_defer_s,
    )


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    sender: SyntheticSender | None = None,
    client: MinerClient | None = None,
    stats: MinerStats | None = None,
) -> None:
    """The scoring process. Without ``sender`` the real one (``scoring.synthetic.sender``) sends the
    synthetic schedule when ``scoring.synthetic_enabled``; ``stats`` are its live miner stats
    (shared through Redis by default, ``core.miners.live``)."""
    stop = stop or asyncio.Event()
    catalog = resolve_catalog(settings.catalog)
    signer = load_signer(settings)
    redis = create_redis(settings.redis.url, max_connections=settings.redis.max_connections)
    chain = chain_from_settings(settings, hotkey=signer.hotkey)
    miners = client or RawMinerClient(signer, connect_timeout=settings.gateway.connect_timeout_s)
    db = Database.from_url(settings.database_url, settings.database)
    token = instance_token()
    prefix = settings.redis.key_prefix

    def backoff() -> Backoff:
        return Backoff(initial_s=settings.chain.retry_initial_s, max_s=settings.chain.retry_max_s)

    sync = MetagraphSync(db, chain, backoff=backoff())
    metrics = ScoringMetrics()
    counters = ContenderCounters.from_settings(redis, settings)
    resources = AsyncExitStack()
    if settings.scoring.metrics_port:
        server = await asyncio.to_thread(
            serve_metrics, metrics, settings.scoring.metrics_host, settings.scoring.metrics_port
        )
        resources.callback(server.shutdown)
    health = MinerHealthProbe(timeout_s=settings.gateway.connect_timeout_s + 2.0)
    resources.push_async_callback(health.close)
    if sender is None and settings.scoring.synthetic_enabled:
        # Shared with the gateways: a miner's announced concurrency counts organic and
        # synthetic calls together, so synthetic ones wait for room instead of taking it.
        stats = stats or await start_live_stats(settings, redis, resources)
        sender = await synthetic_sender(
            settings, catalog, client=miners, redis=redis, counters=counters, stats=stats
        )
    loop = ScoringLoop(
        settings=settings,
        db=db,
        chain=chain,
        periods=PeriodManager(
            db=db,
            sync=sync,
            client=miners,
            catalog=catalog,
            counters=counters,
            routes=RouteStore(redis, prefix=prefix),
            settings=settings,
            self_hotkey=signer.hotkey,
            opened_by=token,
            backoff=backoff(),
            health=health,
            metrics=metrics,
        ),
        sync=sync,
        weights=WeightSetter(
            db=db,
            chain=chain,
            catalog=catalog,
            settings=settings,
            backoff=backoff(),
            metrics=metrics,
        ),
        claims=SlotClaims(redis, counters),
        catalog=catalog,
        self_hotkey=signer.hotkey,
        sender=sender,
    )
    scoring = settings.scoring
    leadership = Leadership(
        LeaderLock(redis, f"{prefix}scoring:leader", ttl_s=scoring.leader_ttl_s, token=token),
        poll_s=scoring.leader_poll_s,
        ttl_s=scoring.leader_ttl_s,
    )
    metrics.follow_leadership(lambda: leadership.is_leader)
    log.info(
        "scoring process %s started as %s (period %.0fs, chain %s)",
        token,
        signer.hotkey,
        scoring.period_s,
        settings.chain.network,
    )
    try:
        while not stop.is_set():
            try:
                await leadership.lead(stop, lambda: loop.lead(stop))
            except* (SQLAlchemyError, RedisError, OSError) as group:
                log.error(
                    "scoring loop failed (%s); restarting in %.0fs",
                    "; ".join(str(exc) for exc in group.exceptions),
                    RESTART_DELAY_S,
                )
                await sleep_or_stop(stop, RESTART_DELAY_S)
    finally:
        await resources.aclose()
        if client is None:
            await miners.close()
        await chain.close()
        await db.dispose()
        await redis.aclose()
