"""The attempt loop: one request, tried on up to ``max_attempts`` miners within its deadline.

Shared by the gateway (organic traffic) and the scoring process (synthetic traffic) so both
reach miners through the same code and update the same live stats.

Before the first token (the first event that carries output) any failure moves on to the next
candidate: connect error, a timeout (the task's ``timeouts.first_token_s``), 429, 5xx, a 401,
403 or 404 (the miner will not serve us), a malformed or oversized event, or an error event.
Each failure cools that miner down (``MinerStats``). A 400, 413 or 422 is different: the
miner's model server refused the request itself as invalid, so it is the request's fault: no
cool-down, not counted against the miner (``Outcome.REQUEST_REFUSED``), and no other miner is
tried; the request fails with ``RequestRefused`` (400) and the server's reason.

Once ``open_stream`` returns, the stream belongs to that miner: the caller reads it with
``OpenStream.next_batch`` and ends it with ``OpenStream.finish`` (exactly once; idempotent),
which records the outcome and releases the connection (``core.miners.streams``).

Every delivered answer carries a ``Receipt`` (``Delivered.receipt``, ``OpenStream.receipt``): the
miner's signature with the request nonce and the response digest, verified later by the caller.

When every attempt fails, the error says what happened: ``NoCapacity`` (503, nobody to ask or
every miner rate-limited us), ``UpstreamTimeout`` (504, every attempt timed out) or
``UpstreamError`` (502). Attempt records (miner, outcome, timings) accumulate on the
``DispatchState`` the caller owns, for metrics, headers and the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

from opentelemetry import trace

from core.miners.attempts import (
    Attempt,
    DispatchState,
    MinerEndpoint,
    StreamFailure,
    record_attempt,
    refusal_reason,
    retry_after,
    status_outcome,
)
from core.miners.client import (
    MinerClient,
    MinerResponse,
    MinerStream,
    TransportError,
)
from core.miners.reader import read_first
from core.miners.receipts import Receipt
from core.miners.stats import MinerStats, Outcome
from core.miners.streams import DECODE_ERRORS, OpenStream
from protocol.miner import RECEIPT_HEADER

T = TypeVar("T")

_TRANSPORT_OUTCOMES = {
    "connect": Outcome.CONNECT_ERROR,
    "timeout": Outcome.TIMEOUT,
    "protocol": Outcome.BAD_RESPONSE,
}


def _interrupted(exc: BaseException) -> tuple[Outcome, str]:
    """How an attempt ended that neither the miner nor the transport ended."""
    if isinstance(exc, asyncio.CancelledError):
        return Outcome.CANCELLED, "cancelled"
    return Outcome.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"


class Delivered(Generic[T]):
    """A whole (non-stream) response from one miner."""

    __slots__ = ("attempt", "endpoint", "headers", "receipt", "value")

    def __init__(
        self, value: T, endpoint: MinerEndpoint, attempt: Attempt, response: MinerResponse
    ) -> None:
        self.value = value
        self.endpoint = endpoint
        self.attempt = attempt
        self.headers = response.headers
        # The body is hashed when the receipt is checked, not here.
        self.receipt = Receipt(
            miner=endpoint.hotkey,
            validator=response.sender,
            nonce=response.nonce,
            signature=response.headers.get(RECEIPT_HEADER),
            body=response.body,
        )


class Dispatcher:
    def __init__(
        self, client: MinerClient, stats: MinerStats, *, tracer: trace.Tracer | None = None
    ) -> None:
        self.client = client
        self.stats = stats
        self.tracer = tracer or trace.NoOpTracer()
        self._tracing = not isinstance(self.tracer, trace.NoOpTracer)

    def _begin(self, state: DispatchState, endpoint: MinerEndpoint) -> tuple[Attempt, trace.Span]:
        attempt = Attempt(endpoint, time.monotonic())
        state.attempts.append(attempt)
        self.stats.acquire((state.task.id, endpoint.hotkey))
        if not self._tracing:
            return attempt, trace.INVALID_SPAN
        span = self.tracer.start_span(
            "miner.attempt",
            context=state.trace_context,
            attributes={
                "sn19.task": state.task.id,
                "sn19.miner.uid": endpoint.uid,
                "sn19.miner.hotkey": endpoint.hotkey,
                "sn19.attempt": len(state.attempts),
            },
        )
        return attempt, span

    def _fail(
        self,
        state: DispatchState,
        attempt: Attempt,
        span: trace.Span,
        outcome: Outcome,
        detail: str,
        retry_after_s: float | None = None,
    ) -> None:
        attempt.detail = detail
        record_attempt(self.stats, state, attempt, outcome, retry_after_s=retry_after_s, span=span)

    def _refused(
        self,
        state: DispatchState,
        attempt: Attempt,
        span: trace.Span,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> bool:
        """Record a non-200 answer; True when the miner refused the request itself as invalid
        (then no other miner is tried: the request is at fault)."""
        attempt.status = status
        outcome = status_outcome(status)
        detail = f"HTTP {status}"
        if outcome is Outcome.REQUEST_REFUSED:
            detail = refusal_reason(body)
        self._fail(state, attempt, span, outcome, detail, retry_after(headers))
        return outcome is Outcome.REQUEST_REFUSED

    async def _rejected(
        self, state: DispatchState, attempt: Attempt, span: trace.Span, stream: MinerStream
    ) -> bool:
        body = b""
        with contextlib.suppress(TransportError):
            body = await stream.read_body(1.0)
        return self._refused(state, attempt, span, stream.status, stream.headers, body)

    async def open_stream(
        self,
        state: DispatchState,
        path: str,
        body: bytes,
        *,
        decode: Callable[[bytes], T],
        ready: Callable[[T], bool],
    ) -> OpenStream[T]:
        """Try candidates until one streams its first token; raise the request's failure."""
        first_token_s = state.task.timeouts.first_token_s
        while (endpoint := state.next_candidate()) is not None:
            attempt, span = self._begin(state, endpoint)
            budget = min(first_token_s, state.remaining(attempt.started))
            stream: MinerStream | None = None
            try:
                stream = await self.client.open_stream(
                    endpoint.url, path, body, receiver=endpoint.hotkey, timeout=budget
                )
                if stream.status != 200:
                    if await self._rejected(state, attempt, span, stream):
                        break
                    continue
                attempt.status = 200
                opened = OpenStream(self.stats, state, endpoint, attempt, stream, decode, span)
                if await read_first(opened, stream, ready, attempt.started + budget):
                    return opened
                stream.close()
                self._fail(state, attempt, span, Outcome.BAD_RESPONSE, "ended before any output")
            except TransportError as exc:
                if stream is not None:
                    stream.close()
                self._fail(state, attempt, span, _TRANSPORT_OUTCOMES[exc.kind], str(exc))
            except StreamFailure as exc:
                if stream is not None:
                    stream.close()
                self._fail(state, attempt, span, exc.outcome, exc.message)
            except BaseException as exc:
                if stream is not None:
                    stream.close()
                self._fail(state, attempt, span, *_interrupted(exc))
                raise
        raise state.failure()

    async def call(
        self,
        state: DispatchState,
        path: str,
        body: bytes,
        *,
        decode: Callable[[bytes], T],
        check: Callable[[T], Awaitable[None]] | None = None,
        units: Callable[[T], float] | None = None,
        max_bytes: int | None = None,
    ) -> Delivered[T]:
        """A JSON request/response call with failover. ``check`` may raise ``ValueError`` to
        reject a decoded answer (e.g. an image that does not decode): that miner failed."""
        per_attempt = state.task.timeouts.first_token_s
        while (endpoint := state.next_candidate()) is not None:
            attempt, span = self._begin(state, endpoint)
            budget = min(per_attempt, state.remaining(attempt.started))
            try:
                response = await self.client.post(
                    endpoint.url,
                    path,
                    body,
                    receiver=endpoint.hotkey,
                    timeout=budget,
                    max_bytes=max_bytes,
                )
                attempt.status = response.status
                if response.status != 200:
                    if self._refused(
                        state, attempt, span, response.status, response.headers, response.body
                    ):
                        break
                    continue
                value = decode(response.body)
                if check is not None:
                    await check(value)
            except TransportError as exc:
                self._fail(state, attempt, span, _TRANSPORT_OUTCOMES[exc.kind], str(exc))
                continue
            except DECODE_ERRORS as exc:
                self._fail(state, attempt, span, Outcome.BAD_RESPONSE, f"invalid answer: {exc}")
                continue
            except BaseException as exc:
                self._fail(state, attempt, span, *_interrupted(exc))
                raise
            attempt.ttft_s = time.monotonic() - attempt.started
            work = units(value) if units is not None else 0.0
            record_attempt(
                self.stats,
                state,
                attempt,
                Outcome.OK,
                units=work,
                generation_s=attempt.ttft_s,
                span=span,
            )
            return Delivered(value, endpoint, attempt, response)
        raise state.failure()
