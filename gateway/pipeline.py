"""Steps shared by every endpoint that calls miners: the dispatch budget, and the bookkeeping
of a finished JSON (non-stream) call."""

from __future__ import annotations

from typing import Any

from core.errors import AppError
from core.miners import Attempt, DispatchState, Outcome, Receipt
from gateway.accounting import DeliveredUsage, Hold
from gateway.context import RequestContext
from gateway.hooks import CompletedRequest, MinerRef, Timings
from protocol.catalog import Task
from scoring import MinerRoute


async def settle(
    ctx: RequestContext,
    hold: Hold,
    usage: DeliveredUsage,
    *,
    outcome: str,
    attempt: Attempt | None,
) -> dict[str, str]:
    return await ctx.gateway.accounting.settle(
        hold,
        usage,
        outcome=outcome,
        miner_hotkey=attempt.hotkey if attempt is not None else None,
        latency_ms=int(ctx.elapsed() * 1000),
    )


async def release(ctx: RequestContext, hold: Hold, error: BaseException) -> None:
    """The request failed before anything was delivered: settle nothing, and only then let the
    error be answered (so an SDK retry after a 5xx never pays twice); the error gets the hold's
    headers and the release's (cost 0, balance)."""
    hold.failure = failure_code(error)
    released = await settle(ctx, hold, DeliveredUsage(), outcome="error", attempt=None)
    if isinstance(error, AppError):
        error.headers = {**hold.headers, **released, **error.headers}


def failure_code(error: BaseException) -> str:
    if isinstance(error, AppError):
        return error.code or error.openai_type
    return "internal_error"


def release_later(ctx: RequestContext, hold: Hold) -> None:
    """The client went away before anything was delivered (the handler is being cancelled):
    release the hold in the background."""
    ctx.gateway.spawn(settle(ctx, hold, DeliveredUsage(), outcome="cancelled", attempt=None))


class RoutedState(DispatchState):
    """A request's dispatch state that remembers its candidate routes, so each attempt's
    outcome lands on the right contender (period, task, miner)."""

    def __init__(self, task: Task, routes: list[MinerRoute], **budget: Any) -> None:
        super().__init__(task, routes, **budget)
        self.routes = {route.hotkey: route for route in routes}


def attempts_done(
    ctx: RequestContext, task: Task, state: DispatchState, *, volume: float = 0.0
) -> None:
    """Once per request: attempt metrics, and every attempt's outcome on its contender's
    counters (``volume``, in task units, goes to the successful attempt). Synchronous: the
    counter buffer is flushed to Redis in the background."""
    gw = ctx.gateway
    gw.metrics.attempts_made(task.id, state.attempts)
    buffer = gw.contenders
    if buffer is None or not isinstance(state, RoutedState):
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


async def dispatch_state(ctx: RequestContext, task: Task) -> DispatchState:
    """Candidates in preference order, the attempt limit and the request's deadline."""
    gw = ctx.gateway
    settings = gw.settings.gateway
    return RoutedState(
        task,
        await gw.selector.candidates(task.id),
        max_attempts=settings.max_attempts,
        deadline=ctx.started + task.timeouts.total_s,
        trace_context=ctx.trace_context,
        retry_after_s=settings.retry_after_s,
    )


def finish_json(
    ctx: RequestContext,
    task: Task,
    state: DispatchState,
    *,
    kind: str,
    miner_request: object,
    result: object,
    receipt: Receipt | None,
    volume: float,
) -> None:
    """Metrics, counters (``volume`` in task units), span and the completion hook for a
    successful JSON call."""
    gw = ctx.gateway
    elapsed = ctx.elapsed()
    ctx.waited += sum(attempt.duration_s or 0.0 for attempt in state.attempts)
    attempts_done(ctx, task, state, volume=volume)
    gw.metrics.request(ctx.route, task.id, 200, elapsed)
    gw.metrics.overhead.child(ctx.route).observe(ctx.overhead())
    ctx.end_span(200)
    if not gw.hooks.active:
        return
    attempt = state.attempts[-1]
    gw.hooks.publish(
        CompletedRequest(
            request_id=ctx.request_id,
            task_id=task.id,
            kind=kind,
            miner_request=miner_request,
            result=result,
            miner=MinerRef(hotkey=attempt.hotkey, uid=attempt.uid),
            timings=Timings(
                started=ctx.started_wall,
                ttft_s=attempt.ttft_s,
                total_s=elapsed,
                attempts=len(state.attempts),
            ),
            outcome="ok",
            receipt=receipt,
        )
    )
