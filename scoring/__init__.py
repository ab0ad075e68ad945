"""The validator loop (SPEC §6): metagraph sync, periods and contenders, synthetic traffic,
scores and weights. ``sn19 scoring`` runs it (``scoring.process``).

Public surface for the gateway and the dashboard (nothing else of this package is theirs to
import):

- ``RouteReader`` / ``MinerRoute``: the routing table per task, published by the leader;
- ``ContenderCounters`` / ``CounterBuffer``: record every dispatch outcome on the contender
  (``record(route.period_id, route.task, route.hotkey, outcome, volume=..., organic=...)``);
- ``ScoreboardReader`` and its views (``MinerView``, ``MinerDetail``, ``CheckerStats``,
  ``ChainStatus``, ...): the dashboard's read API (``scoring.read.board``); ``MinerDetail.advice``
  (``TaskAdvice``, ``Limit``): a miner's weight in words (``scoring.read.advice``);
- ``request_check(db, request_id, hotkey=...)`` → ``RequestCheck``: a request's check, if it
  was sampled (a customer's provenance).
"""

from scoring.counters import ContenderCounters, CounterBuffer, Counts, counter_key
from scoring.read.advice import Limit, TaskAdvice
from scoring.read.board import ScoreboardReader
from scoring.read.explain_views import Explanation, TaskExplanation
from scoring.read.request_checks import RequestCheck, request_check
from scoring.read.views import STATUSES as MINER_STATUSES
from scoring.read.views import (
    ChainStatus,
    CheckerStats,
    CheckRow,
    MinerDetail,
    MinerView,
    PeriodCounts,
    PeriodSummary,
    QueueStats,
    ScorePoint,
    TaskChecks,
    TaskDetail,
    TaskState,
    WeightRunView,
)
from scoring.routes import MinerRoute, RouteReader, RouteStore

__all__ = [
    "MINER_STATUSES",
    "ChainStatus",
    "CheckRow",
    "CheckerStats",
    "ContenderCounters",
    "CounterBuffer",
    "Counts",
    "Explanation",
    "Limit",
    "MinerDetail",
    "MinerRoute",
    "MinerView",
    "PeriodCounts",
    "PeriodSummary",
    "QueueStats",
    "RequestCheck",
    "RouteReader",
    "RouteStore",
    "ScorePoint",
    "ScoreboardReader",
    "TaskAdvice",
    "TaskChecks",
    "TaskDetail",
    "TaskExplanation",
    "TaskState",
    "WeightRunView",
    "counter_key",
    "request_check",
]
