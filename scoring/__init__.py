"""The validator loop (SPEC §6): metagraph sync, periods and contenders, synthetic traffic,
scores and weights. ``sn19 scoring`` runs it (``scoring.runner``).

Public surface for the gateway and the dashboard (nothing else of this package is theirs to
import):

- ``RouteReader`` / ``MinerRoute``: the routing table per task, published by the leader;
- ``ContenderCounters`` / ``CounterBuffer``: record every dispatch outcome on the contender
  (``record(route.period_id, route.task, route.hotkey, outcome, volume=..., organic=...)``).
"""

from scoring.counters import ContenderCounters, CounterBuffer, Counts, counter_key
from scoring.routes import MinerRoute, RouteReader, RouteStore

__all__ = [
    "ContenderCounters",
    "CounterBuffer",
    "Counts",
    "MinerRoute",
    "RouteReader",
    "RouteStore",
    "counter_key",
]
