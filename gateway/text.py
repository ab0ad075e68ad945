"""Serving a validated chat or completion request: admit, select, dispatch, relay, settle.

Clients that stream get the miner's stream relayed as it arrives; before the first token any
miner failure fails over (``core.miners.Dispatcher``) and, once every attempt failed, the client
gets a plain HTTP error (503/504/502). While the first token is slow the response starts with
SSE keep-alive comments (``: keep-alive``) every ``gateway.keepalive_s``; failures after that are
in-band error events. After the first token the miner is never switched; a failure ends the
stream with ``data: {"error": …}`` and no ``[DONE]``.

Clients that do not stream get the same miner stream aggregated into one JSON response; since
nothing has reached the client, a miner failing half-way fails over to the next candidate
within the same attempts and deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, Generic, TypeVar

from core.errors import AppError
from core.miners import Attempt, DispatchState, OpenStream, Outcome, StreamFailure
from gateway.accounting import DeliveredUsage, Hold
from gateway.context import RequestContext
from gateway.errors import error_response
from gateway.hooks import CompletedRequest, MinerRef, Timings
from gateway.http import SSEResponse, json_response
from gateway.pipeline import attempts_done, dispatch_state, release, release_later, settle
from gateway.relay import RelayError, TextPlan, TextRelay, error_event, stream_failure_event
from protocol.catalog import Task
from protocol.sse import DONE

T = TypeVar("T")


async def serve_text(ctx: RequestContext, task: Task, plan: TextPlan[T]) -> Any:
    gw = ctx.gateway
    assert ctx.caller is not None
    hold = await gw.accounting.admit(ctx.caller, task, plan.estimate, request_id=ctx.request_id)
    state: DispatchState | None = None
    try:
        state = await dispatch_state(ctx, task)
        if plan.stream:
            return _open_stream(ctx, task, plan, hold, state)
        return await _aggregate(ctx, task, plan, hold, state)
    except asyncio.CancelledError:
        release_later(ctx, hold)
        raise
    except Exception as exc:
        if state is not None:
            _account(ctx, task, plan, state, None, None, outcome="error", status=None)
        await release(ctx, hold, exc)
        raise


def _headers(ctx: RequestContext, state: DispatchState, hold: Hold) -> dict[str, str]:
    return {
        **hold.headers,
        "x-sn19-attempts": str(len(state.attempts)),
        "openai-processing-ms": str(int(ctx.elapsed() * 1000)),
    }


async def _aggregate(
    ctx: RequestContext, task: Task, plan: TextPlan[T], hold: Hold, state: DispatchState
) -> Any:
    gw = ctx.gateway
    while True:
        waited = time.monotonic()
        opened = await gw.dispatcher.open_stream(
            state, plan.path, plan.body, decode=plan.decode, ready=plan.ready
        )
        ctx.first_token_at = time.monotonic()
        ctx.waited += ctx.first_token_at - waited
        relay = plan.new_relay()
        outcome = Outcome.CANCELLED
        try:
            relay.feed(opened.first)
            await _drain(ctx, task, opened, relay)
            relay.finish(opened.done)
            outcome = Outcome.OK
        except StreamFailure as exc:
            outcome = exc.outcome
            continue
        except RelayError as exc:
            opened.attempt.detail = str(exc)
            outcome = exc.outcome
            continue
        finally:
            opened.finish(outcome, units=relay.completion_tokens)
        body = relay.response()
        charged = await settle(
            ctx, hold, _delivered(plan, relay), outcome="ok", attempt=opened.attempt
        )
        _account(ctx, task, plan, state, opened, relay, outcome="ok", status=200)
        headers = _headers(ctx, state, hold)
        headers.update(charged)
        headers["x-sn19-overhead-ms"] = f"{ctx.overhead() * 1000:.2f}"
        return json_response(body, headers=headers)


async def _drain(
    ctx: RequestContext, task: Task, opened: OpenStream[T], relay: TextRelay[T]
) -> None:
    """Aggregate mode: read the rest of the stream into the relay."""
    idle = task.timeouts.idle_s
    deadline = opened.state.deadline
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise StreamFailure(Outcome.TIMEOUT, "the request exceeded its total time")
        waited = time.monotonic()
        items = await opened.next_batch(min(idle, left))
        ctx.waited += time.monotonic() - waited
        if not items:
            return
        relay.feed(items)


def _open_stream(
    ctx: RequestContext, task: Task, plan: TextPlan[T], hold: Hold, state: DispatchState
) -> SSEResponse:
    relay = _StreamRelay(ctx, task, plan, hold, state)
    return SSEResponse(
        relay.body(),
        lambda: _headers(ctx, state, hold),
        keepalive_s=ctx.gateway.settings.gateway.keepalive_s,
        on_error=lambda error: error_response(ctx, error),
        error_event=error_event,
    )


class _StreamRelay(Generic[T]):
    """One streamed response: the miner stream opened (failing over before the first token),
    its chunks rewritten, then ``[DONE]`` or an in-band error; bookkeeping when it ends."""

    def __init__(
        self, ctx: RequestContext, task: Task, plan: TextPlan[T], hold: Hold, state: DispatchState
    ) -> None:
        self.ctx = ctx
        self.task = task
        self.plan = plan
        self.hold = hold
        self.state = state
        self.relay = plan.new_relay()
        self.opened: OpenStream[T] | None = None
        self.outcome = Outcome.CANCELLED
        self.settled = False

    async def _open(self) -> OpenStream[T]:
        ctx, plan = self.ctx, self.plan
        waited = time.monotonic()
        try:
            self.opened = await ctx.gateway.dispatcher.open_stream(
                self.state, plan.path, plan.body, decode=plan.decode, ready=plan.ready
            )
        except AppError as exc:
            exc.headers.update(self.hold.headers)
            raise
        finally:
            ctx.waited += time.monotonic() - waited
        return self.opened

    async def body(self) -> AsyncGenerator[bytes, None]:
        """Raises ``AppError`` before its first item when no miner could be opened (the hold is
        released before that error is answered)."""
        ctx, relay, state = self.ctx, self.relay, self.state
        idle = self.task.timeouts.idle_s
        try:
            try:
                opened = await self._open()
            except Exception as exc:
                self.outcome = Outcome.INTERNAL_ERROR
                self.settled = True
                await release(ctx, self.hold, exc)
                raise
            ctx.first_token_at = time.monotonic()
            first = relay.feed(opened.first)
            if first:
                yield first
            while True:
                left = state.deadline - time.monotonic()
                if left <= 0:
                    raise StreamFailure(Outcome.TIMEOUT, "the request exceeded its total time")
                waited = time.monotonic()
                items = await opened.next_batch(min(idle, left))
                ctx.waited += time.monotonic() - waited
                if not items:
                    break
                out = relay.feed(items)
                if out:
                    waited = time.monotonic()
                    yield out
                    ctx.waited += time.monotonic() - waited
            tail = relay.finish(opened.done)
            self.outcome = Outcome.OK
            yield tail + DONE
        except StreamFailure as exc:
            self.outcome = exc.outcome
            yield stream_failure_event(exc.outcome, exc.message)
        except RelayError as exc:
            if self.opened is not None:
                self.opened.attempt.detail = str(exc)
            self.outcome = exc.outcome
            yield stream_failure_event(exc.outcome, str(exc))
        finally:
            self._finish()

    def _settlement(self) -> tuple[DeliveredUsage, str, Attempt | None]:
        opened, relay = self.opened, self.relay
        if self.outcome is Outcome.CANCELLED:
            # The client went away: it pays for what it was sent until then.
            attempt = opened.attempt if opened is not None else None
            return _delivered(self.plan, relay), "cancelled", attempt
        if opened is None:
            return DeliveredUsage(), "error", None
        if self.outcome is Outcome.OK:
            return _delivered(self.plan, relay), "ok", opened.attempt
        label = "partial" if relay.completion_tokens else "error"
        return _delivered(self.plan, relay), label, opened.attempt

    def _finish(self) -> None:
        """Bookkeeping once the stream is over; the settle runs in the background, so neither
        the end of the response nor a cancelled stream waits for the database."""
        ctx, relay, opened, outcome = self.ctx, self.relay, self.opened, self.outcome
        if opened is not None:
            opened.finish(outcome, units=relay.completion_tokens)
        usage, label, attempt = self._settlement()
        if not self.settled:
            self.settled = True
            ctx.gateway.spawn(settle(ctx, self.hold, usage, outcome=label, attempt=attempt))
        _account(
            ctx,
            self.task,
            self.plan,
            self.state,
            opened,
            relay,
            outcome=label,
            status=200 if opened is not None else None,
            stream_outcome=outcome,
        )


def _delivered(plan: TextPlan[Any], relay: TextRelay[Any]) -> DeliveredUsage:
    return DeliveredUsage(input_tokens=plan.prompt_tokens, output_tokens=relay.completion_tokens)


def _account(
    ctx: RequestContext,
    task: Task,
    plan: TextPlan[Any],
    state: DispatchState,
    opened: OpenStream[Any] | None,
    relay: TextRelay[Any] | None,
    *,
    outcome: str,
    status: int | None,
    stream_outcome: Outcome | None = None,
) -> None:
    """Metrics, span and the completion hook, once per request (the error handler records the
    request line itself when ``status`` is None)."""
    gw = ctx.gateway
    metrics = gw.metrics
    attempts_done(ctx, task, state, volume=relay.completion_tokens if relay is not None else 0.0)
    if status is None:
        return
    elapsed = ctx.elapsed()
    metrics.request(ctx.route, task.id, status, elapsed)
    metrics.overhead.child(ctx.route).observe(ctx.overhead())
    if stream_outcome is not None and stream_outcome not in (Outcome.OK, Outcome.CANCELLED):
        metrics.stream_errors.child(task.id, stream_outcome.value).inc()
    if ctx.first_token_at is not None:
        metrics.ttft.child(task.id).observe(ctx.first_token_at - ctx.started)
    metrics.add(metrics.prompt_tokens, plan.prompt_tokens, task.id)
    if relay is not None:
        metrics.add(metrics.completion_tokens, relay.completion_tokens, task.id)
    ctx.end_span(status, None if outcome == "ok" else outcome)
    if opened is None or relay is None or not gw.hooks.active:
        return
    attempt = opened.attempt
    gw.hooks.publish(
        CompletedRequest(
            request_id=ctx.request_id,
            task_id=task.id,
            kind=plan.kind,
            miner_request=plan.miner_request,
            result=relay.output,
            miner=MinerRef(hotkey=attempt.hotkey, uid=attempt.uid),
            timings=Timings(
                started=ctx.started_wall,
                ttft_s=attempt.ttft_s,
                total_s=elapsed,
                attempts=len(state.attempts),
            ),
            outcome=outcome,
            receipt=opened.receipt,
        )
    )
