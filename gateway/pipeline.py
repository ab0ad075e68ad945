"""Steps shared by every endpoint that calls miners: the dispatch budget, and the bookkeeping
of a finished JSON (non-stream) call."""

from __future__ import annotations

from core.errors import AppError
from core.miners import Attempt, DispatchState
from gateway.accounting import DeliveredUsage, Hold
from gateway.context import RequestContext
from gateway.hooks import CompletedRequest, MinerRef, Timings
from protocol.catalog import Task


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


async def release(ctx: RequestContext, hold: Hold, error: Exception) -> None:
    """The request failed before anything was delivered: settle nothing (so an SDK retry after
    a 5xx never pays twice), and give the error the hold's headers."""
    if isinstance(error, AppError):
        error.headers.update(hold.headers)
    await settle(ctx, hold, DeliveredUsage(), outcome="error", attempt=None)


async def dispatch_state(ctx: RequestContext, task: Task) -> DispatchState:
    """Candidates in preference order, the attempt limit and the request's deadline."""
    gw = ctx.gateway
    settings = gw.settings.gateway
    return DispatchState(
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
    receipt: str | None,
) -> None:
    """Metrics, span and the completion hook for a successful JSON call."""
    gw = ctx.gateway
    elapsed = ctx.elapsed()
    ctx.waited += sum(attempt.duration_s or 0.0 for attempt in state.attempts)
    gw.metrics.attempts_made(task.id, state.attempts)
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
