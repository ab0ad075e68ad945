"""Serving a planned chat or completion request: one ``Exchange``, the miner's stream read by
``core.miners.StreamReader``, rendered by the endpoint's renderer.

Clients that stream get the miner's stream relayed as it arrives. Before the first token any
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

import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, Generic, Literal, Protocol, TypeVar

import msgspec

from billing import Usage, estimate_chat
from core.errors import AppError
from core.miners import Outcome, StreamFailure, StreamReader, TextRules
from core.miners.reader import C
from core.miners.structured import Expectation
from gateway.context import RequestContext
from gateway.errors import error_response
from gateway.events import ENCODER, error_event, stream_failure_event
from gateway.exchange import Exchange
from gateway.http import SSEResponse, json_response
from protocol.catalog import Task
from protocol.records import TextOutput
from protocol.sse import DONE

T = TypeVar("T")


class TextRenderer(Protocol[T]):
    def feed(self, items: list[T]) -> bytes:
        """Client bytes for these (checked) miner chunks; ``b""`` in aggregate mode."""

    def finish(self, completion_tokens: int) -> bytes:
        """The trailing events of a stream (the usage chunk), without ``[DONE]``."""

    def response(self, output: TextOutput) -> bytes:
        """Aggregate mode: the whole JSON response."""


class StreamFraming:
    """How a stream ends and how it reports failures: chat and completions end with
    ``data: [DONE]`` and fail with ``data: {"error": …}``; the Responses API has its own events
    (``gateway.responses.render``)."""

    __slots__ = ("done", "error_event", "failure_event")

    def __init__(
        self,
        *,
        done: bytes = DONE,
        error_event: Callable[[AppError], bytes] = error_event,
        failure_event: Callable[[Outcome, str], bytes] = stream_failure_event,
    ) -> None:
        self.done = done
        # An error before the first token once keep-alives started the response.
        self.error_event = error_event
        # A failure after the first token.
        self.failure_event = failure_event


OPENAI_SSE = StreamFraming()


class TextPlan(Generic[C]):
    """Everything needed to serve one validated text request."""

    __slots__ = (
        "body",
        "decode",
        "expect",
        "framing",
        "kind",
        "max_tokens",
        "miner_request",
        "n",
        "new_renderer",
        "path",
        "prompt_tokens",
        "ready",
        "stream",
    )

    def __init__(
        self,
        *,
        kind: Literal["chat", "completion"],
        path: str,
        miner_request: msgspec.Struct,
        decode: Callable[[bytes], C],
        ready: Callable[[C], bool],
        new_renderer: Callable[[], TextRenderer[C]],
        stream: bool,
        prompt_tokens: int,
        max_tokens: int,
        n: int,
        expect: Expectation | None = None,
        framing: StreamFraming = OPENAI_SSE,
    ) -> None:
        self.kind = kind
        self.path = path
        self.miner_request = miner_request
        self.body = ENCODER.encode(miner_request)
        self.decode: Callable[[bytes], C] = decode
        self.ready: Callable[[C], bool] = ready
        self.new_renderer: Callable[[], TextRenderer[C]] = new_renderer
        self.stream = stream
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.n = n
        # The shape the answer must have (JSON, tool calls), checked when a choice ends.
        self.expect = expect
        self.framing = framing

    @property
    def estimate(self) -> Usage:
        return estimate_chat(self.prompt_tokens, self.max_tokens, self.n)


async def serve_text(ctx: RequestContext, task: Task, plan: TextPlan[Any]) -> Any:
    exchange = Exchange(
        ctx, task, kind=plan.kind, estimate=plan.estimate, miner_request=plan.miner_request
    )
    if plan.stream:
        return SSEResponse(
            _stream(exchange, plan),
            exchange.response_headers,
            keepalive_s=ctx.gateway.settings.gateway.keepalive_s,
            on_error=lambda error: error_response(ctx, error),
            error_event=plan.framing.error_event,
        )
    async with exchange:
        body = await _aggregate(exchange, plan)
    headers = exchange.response_headers()
    headers["x-sn19-overhead-ms"] = f"{ctx.overhead() * 1000:.2f}"
    return json_response(body, headers=headers)


async def _read(exchange: Exchange, plan: TextPlan[C]) -> StreamReader[C]:
    return await exchange.read_stream(
        plan.path,
        plan.body,
        decode=plan.decode,
        ready=plan.ready,
        rules=TextRules(n=plan.n, max_tokens=plan.max_tokens, expect=plan.expect),
        prompt_tokens=plan.prompt_tokens,
        streaming=plan.stream,
    )


async def _aggregate(exchange: Exchange, plan: TextPlan[C]) -> bytes:
    """The whole answer of the first miner that delivers one in full."""
    while True:
        reader = await _read(exchange, plan)
        renderer: TextRenderer[C] = plan.new_renderer()
        try:
            renderer.feed(reader.first())
            while items := await reader.next():
                renderer.feed(items)
            output = reader.finish()
        except StreamFailure:
            continue  # nothing reached the client: the next candidate tries
        finally:
            reader.end()
        exchange.complete_text(reader, output)
        return renderer.response(output)


async def _stream(exchange: Exchange, plan: TextPlan[C]) -> AsyncGenerator[bytes, None]:
    """The SSE body. Raises ``AppError`` before its first item when the request is refused or no
    miner could be opened (the hold is released before that error is answered)."""
    ctx = exchange.ctx
    async with exchange:
        reader = await _read(exchange, plan)
        renderer: TextRenderer[C] = plan.new_renderer()
        try:
            first = renderer.feed(reader.first())
            if first:
                yield first
            while items := await reader.next():
                out = renderer.feed(items)
                if out:
                    sending = time.monotonic()
                    yield out
                    ctx.waited += time.monotonic() - sending
            output = reader.finish()
        except StreamFailure as failure:
            exchange.broke(failure.outcome)
            yield plan.framing.failure_event(failure.outcome, failure.message)
            return
        finally:
            reader.end()
        exchange.complete_text(reader, output)
        yield renderer.finish(output.completion_tokens) + plan.framing.done
