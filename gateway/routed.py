"""Where each attempt of a request lands: the dispatch state that remembers the candidate
routes (``RoutedState``), and the attempts counted once the request ends, in the gateway's
metrics and on their contenders' counters (``count_attempts``; the synthetic sender records its
own)."""

from __future__ import annotations

from typing import Any

from core.miners import DispatchState, Outcome
from gateway.state import Gateway
from protocol.catalog import Task
from scoring import MinerRoute


class RoutedState(DispatchState):
    """A request's dispatch state that remembers its candidate routes, so each attempt's
    outcome lands on the right contender (period, task, miner)."""

    def __init__(self, task: Task, routes: list[MinerRoute], **budget: Any) -> None:
        super().__init__(task, routes, **budget)
        self.routes = {route.hotkey: route for route in routes}


def count_attempts(gw: Gateway, task_id: str, state: RoutedState, volume: float) -> None:
    """Each attempt on the metrics, and each decided one on its contender's counters (the
    volume only for the attempt that delivered)."""
    gw.metrics.attempts_made(task_id, state.attempts)
    buffer = gw.contenders
    if buffer is None:
        return
    for attempt in state.attempts:
        route = state.routes.get(attempt.hotkey)
        if route is None or attempt.outcome is None:
            continue
        buffer.record(
            route.period_id,
            route.task,
            route.hotkey,
            attempt.outcome,
            volume=volume if attempt.outcome is Outcome.OK else 0.0,
            organic=True,
        )
