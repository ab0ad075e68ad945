"""One request's life with miners and money: the ``Exchange``.

Every endpoint that calls miners (chat, completions, embeddings, images, edits) runs its miner
work inside one::

    exchange = Exchange(ctx, task, kind="embedding", estimate=usage, miner_request=request)
    async with exchange:                          # admit: allowlist, rate limits, credit hold
        delivered = await exchange.call(path, body, decode=..., check=..., units=...)
        exchange.complete(usage, result=..., receipt=..., attempt=..., volume=...)
    return json_response(body, headers=exchange.response_headers())

Text endpoints read a miner stream instead: ``reader = await exchange.read_stream(...)`` (the
first miner to stream a first token, read by ``core.miners.StreamReader``), then
``exchange.complete_text(reader, output)`` once the reader finished.

No other module admits, holds, settles or releases. When the block ends, exactly one settle
happens for the admitted request (``billing.access``), by how it ended:

- ``complete(...)`` was called: the delivered usage is charged (``Delivery.OK``);
- ``broke(outcome)`` was called (a stream failed after its first byte; the client got an
  in-band error event): what was delivered is charged (``PARTIAL``);
- the client went away (``CancelledError`` / ``GeneratorExit``): what it received until then is
  charged (``CANCELLED``), in the background, since nothing may be awaited any more;
- any other exception before anything was delivered: the hold is released (``FAILED``, the
  error's code as the usage record's status) and only then is the error answered, carrying the
  hold's and the release's headers, so an SDK retrying a 5xx never pays twice.

A settle that fails (the database is down) is logged and leaves the hold to the sweeper: the
customer is not charged for it. Then, once per request: the attempts' metrics and their
contenders' counters, the request line, time to first token, tokens, the span, and the
completion hook (the checker's organic sampling and the receipt audit; ``gateway.hooks``).
What a stream delivered so far is its reader's count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal, TypeVar

from billing import Admission, Delivery, ModelNotAllowed, Usage
from core.errors import AppError
from core.miners import (
    Attempt,
    Delivered,
    Outcome,
    Receipt,
    StreamReader,
    TextRules,
)
from core.miners.reader import C
from gateway.context import RequestContext
from gateway.hooks import CompletedRequest, MinerRef, Timings
from gateway.routed import RoutedState, count_attempts
from protocol.catalog import Task
from protocol.records import TextOutput
from scoring import MinerRoute

log = logging.getLogger(__name__)

T = TypeVar("T")

Kind = Literal["chat", "completion", "embedding", "image", "image_edit"]
NOTHING = Usage()


def failure_code(error: BaseException) -> str:
    if isinstance(error, AppError):
        return error.code or error.openai_type
    return "internal_error"


class Exchange:
    __slots__ = (
        "_broken",
        "_closed",
        "_completed",
        "_receipt",
        "_result",
        "_volume",
        "admission",
        "attempt",
        "ctx",
        "estimate",
        "headers",
        "kind",
        "miner_request",
        "prompt_tokens",
        "readers",
        "state",
        "streaming",
        "task",
    )

    def __init__(
        self, ctx: RequestContext, task: Task, *, kind: Kind, estimate: Usage, miner_request: Any
    ) -> None:
        self.ctx = ctx
        self.task = task
        self.kind = kind
        self.estimate = estimate
        self.miner_request = miner_request
        self.admission: Admission | None = None
        self.state: RoutedState | None = None
        # Headers for every response of this request (the hold's, then the settle's).
        self.headers: dict[str, str] = {}
        # The streams read (one per attempt that got a first token), and the prompt they answer.
        self.readers: list[StreamReader[Any]] = []
        self.prompt_tokens = 0
        # Whether the stream being read goes to the client as it arrives (else it is aggregated,
        # and nothing reaches the client before the exchange completes).
        self.streaming = False
        self.attempt: Attempt | None = None
        self._completed: Usage | None = None
        self._broken: Outcome | None = None
        self._result: object = None
        self._receipt: Receipt | None = None
        self._volume = 0.0
        self._closed = False

    # -- admission and dispatch --------------------------------------------------------------

    async def __aenter__(self) -> Exchange:
        ctx, task = self.ctx, self.task
        gw = ctx.gateway
        caller = ctx.caller
        assert caller is not None, "authenticate before the exchange"
        if caller.allowed_models is not None and task.id not in caller.allowed_models:
            raise ModelNotAllowed(task.id)
        self.admission = await gw.access.admit(
            caller.key, task, self.estimate, request_id=ctx.request_id
        )
        self.headers.update(self.admission.headers)
        try:
            settings = gw.settings.gateway
            self.state = RoutedState(
                task,
                await self._candidates(),
                max_attempts=settings.max_attempts,
                deadline=ctx.started + task.timeouts.total_s,
                trace_context=ctx.trace_context,
                retry_after_s=settings.retry_after_s,
            )
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def _candidates(self) -> list[MinerRoute]:
        """The miners to try, in order; when every miner of the task is busy (or others are
        already waiting for one), a place in the slot queue first (``gateway.slots``)."""
        ctx, task = self.ctx, self.task
        gw = ctx.gateway
        selector, slots = gw.selector, gw.slots
        if not slots.busy(task.id):
            found = await selector.candidates(task.id)
            if found or not await selector.routed(task.id):
                return found
        wait_s = gw.settings.gateway.queue_wait_s or task.timeouts.first_token_s
        assert ctx.caller is not None
        return await self._waiting(
            slots.wait(
                task.id,
                ctx.caller.key_id,
                ctx.started + min(wait_s, task.timeouts.total_s),
                lambda: selector.candidates(task.id),
                lambda: selector.free_slots(task.id),
            )
        )

    async def _waiting(self, work: Awaitable[T]) -> T:
        started = time.monotonic()
        try:
            return await work
        finally:
            self.ctx.waited += time.monotonic() - started

    async def read_stream(
        self,
        path: str,
        body: bytes,
        *,
        decode: Callable[[bytes], C],
        ready: Callable[[C], bool],
        rules: TextRules,
        prompt_tokens: int,
        streaming: bool,
    ) -> StreamReader[C]:
        """The first miner (in preference order) to stream a first token
        (``core.miners.Dispatcher.open_stream``), to be read under ``rules``. ``streaming``: the
        client is sent the tokens as they are read, so if the exchange ends before the reader
        finished, it pays for the tokens read so far."""
        assert self.state is not None
        opened = await self._waiting(
            self.ctx.gateway.dispatcher.open_stream(
                self.state, path, body, decode=decode, ready=ready
            )
        )
        self.ctx.first_token_at = time.monotonic()
        self.attempt = opened.attempt
        reader = StreamReader(opened, rules, idle_s=self.task.timeouts.idle_s)
        self.readers.append(reader)
        self.prompt_tokens = prompt_tokens
        self.streaming = streaming
        return reader

    async def call(
        self,
        path: str,
        body: bytes,
        *,
        decode: Callable[[bytes], T],
        check: Callable[[T], Awaitable[None]] | None = None,
        units: Callable[[T], float] | None = None,
        max_bytes: int | None = None,
    ) -> Delivered[T]:
        """A JSON call with failover; see ``core.miners.Dispatcher.call``."""
        assert self.state is not None
        delivered = await self._waiting(
            self.ctx.gateway.dispatcher.call(
                self.state, path, body, decode=decode, check=check, units=units, max_bytes=max_bytes
            )
        )
        self.attempt = delivered.attempt
        return delivered

    # -- how it ended --------------------------------------------------------------------------

    def complete(
        self,
        usage: Usage,
        *,
        result: object,
        receipt: Receipt | None,
        attempt: Attempt,
        volume: float,
    ) -> None:
        """The answer was delivered in full: ``usage`` is charged, ``volume`` (task units)
        counts on the serving miner's contender."""
        self._completed = usage
        self._result = result
        self._receipt = receipt
        self.attempt = attempt
        self._volume = volume

    def complete_text(self, reader: StreamReader[Any], output: TextOutput) -> None:
        """``reader`` finished with ``output``: the whole answer was delivered."""
        tokens = output.completion_tokens
        self.complete(
            Usage(input_tokens=self.prompt_tokens, output_tokens=tokens),
            result=output,
            receipt=reader.opened.receipt,
            attempt=reader.opened.attempt,
            volume=float(tokens),
        )

    def _so_far(self) -> Usage:
        """What the client received before the exchange ended early: the tokens of the stream
        being sent to it (nothing for a JSON or aggregated answer)."""
        if not self.streaming:
            return NOTHING
        reader = self.readers[-1]
        if self._result is None:
            self._result = reader.rules.output
        return Usage(input_tokens=self.prompt_tokens, output_tokens=reader.completion_tokens)

    def broke(self, outcome: Outcome) -> None:
        """A stream failed after its first byte (the client got an in-band error)."""
        self._broken = outcome

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.state is not None:
            headers["x-sn19-attempts"] = str(len(self.state.attempts))
        return headers

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed or self.admission is None:
            return
        self._closed = True
        self.ctx.gateway.slots.released(self.task.id)
        left = isinstance(exc, asyncio.CancelledError | GeneratorExit)
        if self._completed is not None:
            delivered, delivery, label = self._completed, Delivery.OK, "ok"
        elif self._broken is not None:
            delivered, delivery = self._so_far(), Delivery.PARTIAL
            label = "partial" if delivered.output_tokens else "error"
        elif left:
            delivered, delivery, label = self._so_far(), Delivery.CANCELLED, "cancelled"
        else:
            delivered, delivery, label = self._so_far(), Delivery.FAILED, "error"
        failed = exc is not None and not left and self._completed is None
        settle = self._settle(
            delivered, delivery, failure_code(exc) if failed and exc is not None else None
        )
        if left:
            # Nothing may be awaited in a cancelled task or a closing generator.
            self.ctx.gateway.spawn(settle)
        else:
            settled = await settle
            if isinstance(exc, AppError):
                exc.headers = {**self.headers, **settled, **exc.headers}
        self._record(delivered, label, failed=failed)

    async def _settle(
        self, delivered: Usage, delivery: Delivery, failure: str | None
    ) -> dict[str, str]:
        assert self.admission is not None
        attempt = self.attempt if delivery is not Delivery.FAILED else None
        try:
            settled = await self.ctx.gateway.access.settle(
                self.admission,
                delivered,
                delivery,
                failure=failure,
                miner_hotkey=attempt.hotkey if attempt is not None else None,
                latency_ms=int(self.ctx.elapsed() * 1000),
            )
        except Exception:
            log.exception("settle of %s failed; the sweeper releases its hold", self.ctx.request_id)
            return {}
        self.headers.update(settled)
        return settled

    # -- bookkeeping ---------------------------------------------------------------------------

    def _record(self, delivered: Usage, label: str, *, failed: bool) -> None:
        """Metrics, counters, span and the completion hook, once. A request that failed with
        an exception gets its request line and span from the error renderer, which knows the
        status."""
        ctx, task = self.ctx, self.task
        for reader in self.readers:
            ctx.waited += reader.waited
        if self.state is not None:
            count_attempts(ctx.gateway, task.id, self.state, self._volume)
        if failed or self.attempt is None or (label == "cancelled" and not self.streaming):
            return  # the error renderer counts it, or no response ever started
        gw = ctx.gateway
        elapsed = ctx.elapsed()
        gw.metrics.served(
            ctx.route,
            task.id,
            elapsed=elapsed,
            overhead=ctx.overhead(),
            ttft=ctx.first_token_at - ctx.started if ctx.first_token_at is not None else None,
            usage=delivered,
            broken=self._broken.value if self._broken is not None else None,
        )
        ctx.end_span(200, None if label == "ok" else label)
        hub = gw.hooks
        if not hub.active or self._result is None:
            return
        attempt, state = self.attempt, self.state
        hub.publish(
            CompletedRequest(
                request_id=ctx.request_id,
                task_id=task.id,
                kind=self.kind,
                miner_request=self.miner_request,
                result=self._result,
                miner=MinerRef(hotkey=attempt.hotkey, uid=attempt.uid),
                timings=Timings(
                    started=ctx.started_wall,
                    ttft_s=attempt.ttft_s,
                    total_s=elapsed,
                    attempts=len(state.attempts) if state is not None else 1,
                ),
                outcome=label,
                receipt=self._receipt,
            )
        )
