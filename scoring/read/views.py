"""The typed views of scoring's read API (``scoring.read.board``): what a dashboard shows about the
miners, the checker and the chain. Plain msgspec Structs, built by ``ScoreboardReader``.

Statuses (``TaskState.status`` / ``MinerView.status``), most useful first:

- ``routed``: in the routing table for the task right now (a routable contender of the open
  period, published by ``sn19 scoring``) and not cooled down; without Redis the reader cannot
  see the table and infers it from the open period's contenders;
- ``cooled``: routed, but the gateway that renders the page skips it after failures (only
  known when the reader was given the gateway's live stats);
- ``not serving``: registered without an axon (nothing to send requests to);
- ``no contender``: registered and serving, but no routable contender this period (it did not
  answer the capacity request, or announced nothing for the task);
- ``deregistered``: not in the last synced metagraph (seen in periods or weight runs only);
- ``validator``: a registered validator (a permit, no axon, no contender): not a miner.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

import msgspec

from scoring.read.advice import TaskAdvice
from scoring.read.explain_views import Explanation
from scoring.routes import MinerRoute

STATUSES = ("routed", "cooled", "not serving", "no contender", "deregistered", "validator")


class PeriodCounts(msgspec.Struct, frozen=True):
    """A contender's counters: live from Redis for the open period, as flushed at close for a
    closed one (with its period score)."""

    period_id: int
    consumed: float = 0.0
    requests: int = 0
    rate_limited: int = 0
    failed: int = 0
    score: float | None = None


class TaskState(msgspec.Struct, frozen=True):
    """One miner on one task."""

    task: str
    # The open period's contender (None: no contender this period).
    announced: float | None = None
    capacity: float | None = None  # clamped to [0, max_capacity]
    concurrency: int | None = None
    quota: float | None = None
    current: PeriodCounts | None = None  # open period, live counters
    last: PeriodCounts | None = None  # the last closed period
    # From the latest weight run (None: not in it): mean(q^1.5), p30 work/s and its bonus.
    quality: float | None = None
    check_count: int = 0
    speed_metric: float | None = None
    speed_bonus: float | None = None
    cubed_share: float | None = None  # s'
    contribution: float | None = None  # task weight × s'
    # The routing table now (None: Redis not available to the reader).
    routed: bool | None = None
    route_concurrency: int | None = None
    route_quality: float | None = None  # plain mean check quality routing prefers
    cooled: bool = False
    # Failed checks (scored below 0.5) of the last 24 h.
    failed_checks_24h: int = 0

    @property
    def routable(self) -> bool:
        return bool(self.capacity and self.concurrency)

    @property
    def in_routes(self) -> bool:
        """In the routing table; when it cannot be read, what it is made of: a routable
        contender of the open period."""
        return self.routed if self.routed is not None else self.routable


class ContenderRow(msgspec.Struct, frozen=True):
    """A contender as stored (what ``TaskState`` is built from)."""

    period_id: int
    announced: float
    capacity: float
    concurrency: int
    quota: float
    consumed: float
    requests: int
    rate_limited: int
    failed: int
    period_score: float | None

    def counts(self) -> PeriodCounts:
        c = self
        return PeriodCounts(
            c.period_id, c.consumed, c.requests, c.rate_limited, c.failed, c.period_score
        )


class FactorSummary(msgspec.Struct, frozen=True):
    check_count: int
    quality: float | None
    speed_metric: float | None
    speed_bonus: float
    cubed_share: float
    task_weight: float


def task_state(
    task: str,
    *,
    opened: ContenderRow | None,
    live: PeriodCounts | None,
    closed: ContenderRow | None,
    factor: FactorSummary | None,
    route: MinerRoute | None,
    routes_known: bool,
    cooled: bool,
    failed: int,
) -> TaskState | None:
    """One miner on one task from what the reader found (None: nothing at all)."""
    if not (opened or closed or factor or route or failed):
        return None
    return TaskState(
        task=task,
        announced=opened.announced if opened else None,
        capacity=opened.capacity if opened else None,
        concurrency=opened.concurrency if opened else None,
        quota=opened.quota if opened else None,
        current=live if opened else None,
        last=closed.counts() if closed else None,
        quality=factor.quality if factor else None,
        check_count=factor.check_count if factor else 0,
        speed_metric=factor.speed_metric if factor else None,
        speed_bonus=factor.speed_bonus if factor else None,
        cubed_share=factor.cubed_share if factor else None,
        contribution=factor.task_weight * factor.cubed_share if factor else None,
        routed=route is not None if routes_known else None,
        route_concurrency=route.concurrency if route else None,
        route_quality=route.quality if route else None,
        cooled=cooled,
        failed_checks_24h=failed,
    )


def histogram(scores: Iterable[float], buckets: int = 10) -> tuple[int, ...]:
    """Check scores in buckets of 1/``buckets`` (1.0 falls in the last)."""
    counts = [0] * buckets
    for score in scores:
        counts[min(max(int(score * buckets), 0), buckets - 1)] += 1
    return tuple(counts)


class ChainProbe(msgspec.Struct):
    """What the chain said, and when (``ScoreboardReader`` remembers it briefly)."""

    state: str
    error: str = ""
    block: int | None = None
    last_weights: int | None = None
    rate_limit: int | None = None
    at: float = msgspec.field(default_factory=time.monotonic)


class MinerView(msgspec.Struct, frozen=True):
    hotkey: str
    uid: int | None  # None: not in the last synced metagraph
    coldkey: str = ""
    stake: float = 0.0
    axon: str | None = None
    validator_permit: bool = False
    tasks: tuple[TaskState, ...] = ()
    # The latest weight run: normalised weight and the u16 value sent (None: not weighted).
    weight: float | None = None
    weight_u16: int | None = None

    @property
    def registered(self) -> bool:
        return self.uid is not None

    @property
    def serving(self) -> bool:
        return bool(self.axon)

    def task(self, task_id: str) -> TaskState | None:
        return next((state for state in self.tasks if state.task == task_id), None)

    def status(self, task_id: str | None = None) -> str:
        """The miner's status on one task, or over all of its tasks (see the module doc)."""
        states = [s for s in self.tasks if task_id is None or s.task == task_id]
        if any(s.in_routes and not s.cooled for s in states):
            return "routed"
        if any(s.in_routes for s in states):
            return "cooled"
        if not self.registered:
            return "deregistered"
        if self.validator_permit and not self.serving and not self.tasks:
            return "validator"
        if not self.serving:
            return "not serving"
        return "no contender"

    @property
    def failed_checks_24h(self) -> int:
        return sum(s.failed_checks_24h for s in self.tasks)

    @property
    def quality(self) -> float | None:
        """Mean over the tasks that have a quality in the latest weight run."""
        known = [s.quality for s in self.tasks if s.quality is not None]
        return sum(known) / len(known) if known else None


class ScorePoint(msgspec.Struct, frozen=True):
    """One closed period of a (miner, task): the period history's raw material."""

    period_id: int
    started_at: datetime
    score: float | None
    consumed: float
    quota: float
    requests: int
    rate_limited: int
    failed: int


class CheckRow(msgspec.Struct, frozen=True):
    """A check result (a failed one, on the miner page). ``reason`` and ``evidence`` are empty
    until the checker records them."""

    id: int
    task: str
    quality: float
    created_at: datetime
    organic: bool
    work: float
    response_time_s: float
    reason: str = ""
    evidence: str = ""


class TaskDetail(msgspec.Struct, frozen=True):
    task: str
    history: tuple[ScorePoint, ...]  # oldest first
    histogram: tuple[int, ...]  # check scores of the last 24 h in ten buckets of 0.1
    # Over the quality window now (scoring's own formulas; the run's values are in the
    # explanation): checks, mean(q^1.5), p30 work/s.
    checks: int
    quality_now: float | None
    speed_now: float | None


class MinerDetail(msgspec.Struct, frozen=True):
    miner: MinerView
    tasks: tuple[TaskDetail, ...]
    failures: tuple[CheckRow, ...]  # newest first
    explanation: Explanation | None  # None: no weight run yet
    quality_window_s: float
    # The explanation in words, per task of the run: what limits the miner most.
    advice: tuple[TaskAdvice, ...] = ()


class QueueStats(msgspec.Struct, frozen=True):
    """The check queue (a Redis Stream); None fields: unknown (no Redis, or no stream yet)."""

    stream: str
    available: bool
    length: int | None = None
    pending: int | None = None
    lag: int | None = None  # never delivered (Redis 7+)
    dead_letters: int | None = None
    error: str = ""


class TaskChecks(msgspec.Struct, frozen=True):
    task: str
    total: int
    failed: int
    histogram: tuple[int, ...]  # ten buckets of 0.1 (the last holds 0.9–1.0)
    per_hour: tuple[int, ...]  # oldest hour first, the current hour last


class CheckerStats(msgspec.Struct, frozen=True):
    queue: QueueStats
    window_start: datetime
    hours: tuple[datetime, ...]  # the start of each per-hour bucket
    tasks: tuple[TaskChecks, ...]

    @property
    def total(self) -> int:
        return sum(task.total for task in self.tasks)


class WeightRunView(msgspec.Struct, frozen=True):
    id: int
    created_at: datetime
    status: str
    message: str
    block: int | None
    period_id: int | None
    set_at: datetime | None
    miners: int  # weighted miners
    nonzero: int  # of which with a u16 above 0


class ChainStatus(msgspec.Struct, frozen=True):
    network: str
    netuid: int
    # "ok", "unreachable" (the chain did not answer in time or failed) or "not connected" (the
    # reader has no chain: the page shows what the database knows).
    state: str
    error: str = ""
    block: int | None = None
    last_weights_block: int | None = None  # as the chain reports it
    rate_limit: int | None = None
    # Metagraph as last synced into the database.
    synced_at: datetime | None = None
    synced_block: int | None = None
    neurons: int = 0
    last_set: WeightRunView | None = None
    last_run: WeightRunView | None = None

    @property
    def next_allowed_block(self) -> int | None:
        if self.rate_limit is None:
            return None
        if self.last_weights_block is None:
            return self.block
        return self.last_weights_block + self.rate_limit

    @property
    def blocks_to_wait(self) -> int | None:
        allowed = self.next_allowed_block
        if allowed is None or self.block is None:
            return None
        return max(allowed - self.block, 0)


class PeriodSummary(msgspec.Struct, frozen=True):
    id: int
    status: str
    started_at: datetime
    ends_at: datetime
    closed_at: datetime | None
    block: int | None
    contenders: int
    routable: int
    miners: int
    requests: int  # closed periods only (an open period's counters live in Redis)
    rate_limited: int
    failed: int
    mean_score: float | None
