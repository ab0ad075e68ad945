"""Scoring's read API for dashboards (ARCHITECTURE: ``web`` imports this, never the loop's
internals). ``ScoreboardReader`` answers, from the database, Redis and (optionally) the chain:

- ``miners()``: every miner of the metagraph, the open and the last closed period and the
  latest weight run, with per task its contender (announced and clamped capacity, quota), its
  counters (live from Redis for the open period), the last period score, the run's quality,
  speed and shares, whether it is in the routing table now (and cooled down, when given the
  gateway's live stats), and its checks of the last 24 h;
- ``miner(hotkey)``: one miner in depth: period score history, check score distribution,
  quality and speed now (scoring's own formulas over the quality window), recent failed checks
  with the checker's reason, and the latest weight run's explanation, factor by factor;
- ``checker_stats()``: the check queue's depth and per task score histograms and jobs per hour
  over the last 24 h; ``chain_status()``, ``weight_runs()``, ``periods()``.

Every list is aggregated in SQL; nothing reads more rows than the page shows, except one
miner's checks over the quality window (the formulas need the raw scores).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from core.chain import Chain, ChainUnavailable
from core.checks import CheckQueue
from core.db import Database, utcnow
from core.db.tables.scoring import Node, WeightRun
from core.miners import MinerStats
from core.settings import Settings
from protocol.catalog import Catalog
from scoring import formulas
from scoring.counters import ContenderCounters
from scoring.read import explain_data as read_explain
from scoring.read import queries as q
from scoring.read.advice import advise_task
from scoring.read.checks import CheckStats
from scoring.read.views import (
    ChainProbe,
    ChainStatus,
    CheckerStats,
    ContenderRow,
    FactorSummary,
    MinerDetail,
    MinerView,
    PeriodCounts,
    PeriodSummary,
    QueueStats,
    TaskDetail,
    WeightRunView,
    histogram,
    task_state,
)
from scoring.routes import MinerRoute, RouteReader

Pair = tuple[str, str]  # (task, hotkey)
STATS_WINDOW_S = 24 * 3600.0
HISTORY_POINTS = 48
RECENT_FAILURES = 20


def local_chain(settings: Settings) -> Chain | None:
    """The local file network's chain when it exists and the validator's hotkey can be read
    (else None: the pages show what the database knows)."""
    if settings.chain.network != "local" or not settings.chain_file.exists():
        return None
    from core.chain import chain_from_settings
    from core.wallet import load_signer

    try:
        hotkey = load_signer(settings).hotkey
    except (RuntimeError, OSError, ValueError):
        return None
    return chain_from_settings(settings, hotkey=hotkey)


class ScoreboardReader:
    """Read-only views of the validator loop's state. ``redis`` None: routes, live counters
    and the queue are unknown; ``chain`` None: the chain is "not connected" (the database's
    last sync and weight runs are still shown); ``live``: the gateway's live miner stats, to
    tell cooled-down miners (this process's view)."""

    def __init__(
        self,
        db: Database,
        redis: Redis | None,
        chain: Chain | None,
        catalog: Catalog,
        prefix: str = "sn19:",
        *,
        netuid: int = 19,
        network: str = "",
        quality_window_s: float = 72 * 3600.0,
        live: MinerStats | None = None,
        chain_timeout_s: float = 3.0,
        chain_cache_s: float = 10.0,
    ) -> None:
        self.db = db
        self.chain = chain
        self.catalog = catalog
        self.netuid = netuid
        self.network = network
        self.quality_window_s = quality_window_s
        self.live = live
        self.chain_timeout_s = chain_timeout_s
        self.chain_cache_s = chain_cache_s
        self._routes = RouteReader(redis, prefix=prefix, cache_s=1.0) if redis else None
        self._counters = ContenderCounters(redis, prefix=prefix, ttl_s=0) if redis else None
        self._checks = CheckStats(db, CheckQueue(redis, prefix=prefix) if redis else None)
        self._probe: ChainProbe | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        db: Database,
        redis: Redis | None,
        catalog: Catalog,
        chain: Chain | None = None,
        live: MinerStats | None = None,
    ) -> ScoreboardReader:
        """``chain`` None on the local file network (``sn19 dev``): one over its file, since
        reading it needs no connection (the chain page then shows the block)."""
        return cls(
            db,
            redis,
            chain if chain is not None else local_chain(settings),
            catalog,
            settings.redis.key_prefix,
            netuid=settings.chain.netuid,
            network=settings.chain.network,
            quality_window_s=settings.scoring.quality_window_s,
            live=live,
            chain_timeout_s=min(settings.chain.timeout_s, 3.0),
        )

    def tasks(self) -> list[str]:
        return [task.id for task in self.catalog.enabled()]

    # -- miners ---------------------------------------------------------------------------------

    async def miners(self) -> list[MinerView]:
        """Every known miner, by uid (deregistered ones last)."""
        return await self._miners(None)

    async def _miners(self, hotkey: str | None) -> list[MinerView]:
        tasks = self.tasks()
        async with self.db.read() as session:
            open_id, opened = await q.period_contenders(session, "open", hotkey)
        # The rest of the database and Redis are read at the same time.
        (nodes, closed, factors, weights, failed), live, routes = await asyncio.gather(
            self._stored(hotkey, tasks),
            self._live_counts(open_id, list(opened)),
            self._route_table(tasks),
        )
        hotkeys = set(nodes) | {h for _, h in (*opened, *closed, *factors)} | set(weights)
        views = []
        for key in hotkeys:
            states = []
            for task in tasks:
                pair = (task, key)
                route = routes.get(pair) if routes is not None else None
                cooled = (
                    route is not None
                    and self.live is not None
                    and not self.live.available(pair, time.monotonic())
                )
                state = task_state(
                    task,
                    opened=opened.get(pair),
                    live=live.get(pair),
                    closed=closed.get(pair),
                    factor=factors.get(pair),
                    route=route,
                    routes_known=routes is not None,
                    cooled=cooled,
                    failed=failed.get(pair, 0),
                )
                if state is not None:
                    states.append(state)
            node = nodes.get(key)
            weight = weights.get(key)
            views.append(
                MinerView(
                    hotkey=key,
                    uid=node.uid if node else None,
                    coldkey=node.coldkey if node else "",
                    stake=node.stake if node else 0.0,
                    axon=node.axon if node else None,
                    validator_permit=node.validator_permit if node else False,
                    tasks=tuple(states),
                    weight=weight[0] if weight else None,
                    weight_u16=weight[1] if weight else None,
                )
            )
        views.sort(key=lambda v: (v.uid is None, v.uid if v.uid is not None else 0, v.hotkey))
        return views

    async def _stored(
        self, hotkey: str | None, tasks: list[str]
    ) -> tuple[
        dict[str, Node],
        dict[Pair, ContenderRow],
        dict[Pair, FactorSummary],
        dict[str, tuple[float, int]],
        dict[Pair, int],
    ]:
        """Nodes, the last closed period, the latest run, failed checks of the last 24 h."""
        since = utcnow() - timedelta(seconds=STATS_WINDOW_S)
        async with self.db.read() as session:
            nodes = await q.nodes(session, self.netuid, hotkey)
            _, closed = await q.period_contenders(session, "closed", hotkey)
            run_id = await session.scalar(select(func.max(WeightRun.id)))
            factors = await q.factors(session, run_id, hotkey)
            weights = await q.weights(session, run_id, hotkey)
            failed = await q.failed_counts(session, tasks, since, hotkey)
        return nodes, closed, factors, weights, failed

    async def _live_counts(
        self, period_id: int | None, keys: list[Pair]
    ) -> dict[Pair, PeriodCounts]:
        if period_id is None or self._counters is None or not keys:
            return {}
        try:
            read = await self._counters.read_many([(period_id, t, h) for t, h in keys])
        except (RedisError, OSError):
            return {}
        return {
            (task, hotkey): PeriodCounts(
                period_id, c.consumed, c.requests, c.rate_limited, c.failed
            )
            for (_, task, hotkey), c in read.items()
        }

    async def _route_table(self, tasks: Sequence[str]) -> dict[Pair, MinerRoute] | None:
        if self._routes is None:
            return None
        table: dict[Pair, MinerRoute] = {}
        try:
            for task in tasks:
                for route in await self._routes.routes(task):
                    table[(task, route.hotkey)] = route
        except (RedisError, OSError):
            return None
        return table

    async def miner(self, hotkey: str) -> MinerDetail | None:
        """One miner in depth; None when nothing is known about it."""
        found = await self._miners(hotkey)
        if not found:
            return None
        tasks = self.tasks()
        now = utcnow()
        window_start = now - timedelta(seconds=self.quality_window_s)
        day_start = now - timedelta(seconds=STATS_WINDOW_S)
        async with self.db.read() as session:
            history = await q.score_history(session, hotkey, tasks, HISTORY_POINTS)
            samples = await q.samples(session, hotkey, tasks, window_start)
            failures = await q.failures(session, hotkey, tasks, RECENT_FAILURES)
            explanation = await read_explain.explanation(session, hotkey)
            facts = await read_explain.period_facts(
                session,
                hotkey,
                {
                    t.factor.task: [e.period_id for e in t.factor.history]
                    for t in (explanation.tasks if explanation else ())
                },
            )
        details = []
        for task in tasks:
            rows = samples.get(task, [])
            points = history.get(task, [])
            if not rows and not points and found[0].task(task) is None:
                continue
            rates = [r for s, _ in rows if (r := s.rate) is not None]
            details.append(
                TaskDetail(
                    task=task,
                    history=tuple(points),
                    histogram=histogram(s.quality for s, at in rows if at >= day_start),
                    checks=len(rows),
                    quality_now=formulas.quality([s.quality for s, _ in rows]),
                    speed_now=formulas.percentile(rates, formulas.SPEED_PERCENTILE)
                    if rates
                    else None,
                )
            )
        return MinerDetail(
            miner=found[0],
            tasks=tuple(details),
            failures=tuple(failures),
            explanation=explanation,
            quality_window_s=self.quality_window_s,
            advice=tuple(
                advise_task(
                    t.factor,
                    facts.get(t.factor.task, {}),
                    largest_capacity=t.largest_capacity,
                    speeds=t.speeds,
                    quality_window_s=self.quality_window_s,
                )
                for t in (explanation.tasks if explanation else ())
            ),
        )

    # -- checker --------------------------------------------------------------------------------

    async def checker_stats(self) -> CheckerStats:
        """The queue now, and per task the check scores and jobs per hour of the last 24 h."""
        return await self._checks.stats(self.tasks())

    async def queue_stats(self) -> QueueStats:
        return await self._checks.queue_stats()

    # -- chain, weight runs, periods ------------------------------------------------------------

    async def chain_status(self) -> ChainStatus:
        probe = await self._chain_probe()
        async with self.db.read() as session:
            synced_at, synced_block, neurons = (
                await session.execute(
                    select(func.max(Node.synced_at), func.max(Node.block), func.count()).where(
                        Node.netuid == self.netuid
                    )
                )
            ).one()
            last_set = await q.weight_runs(session, limit=1, status="set")
            last_run = await q.weight_runs(session, limit=1)
        return ChainStatus(
            network=self.network,
            netuid=self.netuid,
            state=probe.state,
            error=probe.error,
            block=probe.block,
            last_weights_block=probe.last_weights,
            rate_limit=probe.rate_limit,
            synced_at=synced_at,
            synced_block=int(synced_block) if synced_block is not None else None,
            neurons=int(neurons),
            last_set=last_set[0] if last_set else None,
            last_run=last_run[0] if last_run else None,
        )

    async def _chain_probe(self) -> ChainProbe:
        """Block, last weights block and rate limit, each call bounded by the chain timeout;
        remembered for ``chain_cache_s`` so pages never wait on the chain twice in a row."""
        if self.chain is None:
            return ChainProbe("not connected")
        if self._probe is not None and time.monotonic() - self._probe.at < self.chain_cache_s:
            return self._probe
        chain = self.chain
        try:
            async with asyncio.timeout(self.chain_timeout_s):
                block = await chain.current_block()
                values = (block, await chain.last_weights_block(), await chain.weights_rate_limit())
            self._probe = ChainProbe(
                "ok", block=block, last_weights=values[1], rate_limit=values[2]
            )
        except TimeoutError:
            self._probe = ChainProbe("unreachable", f"no answer within {self.chain_timeout_s:g} s")
        except (ChainUnavailable, OSError) as exc:
            self._probe = ChainProbe("unreachable", str(exc) or type(exc).__name__)
        return self._probe

    async def weight_runs(self, limit: int = 20) -> list[WeightRunView]:
        """The latest weight calculations, newest first."""
        async with self.db.read() as session:
            return await q.weight_runs(session, limit=limit)

    async def periods(self, limit: int = 20) -> list[PeriodSummary]:
        """The latest periods, newest first, with their contenders' totals."""
        async with self.db.read() as session:
            return await q.periods(session, limit)
