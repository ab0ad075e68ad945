"""Relaying a miner's stream to the client: the shared machinery of chat and completions.

A ``TextRelay`` turns decoded miner chunks into client bytes (stream mode: SSE events with the
gateway's id and model; aggregate mode: nothing until ``response()``), checks what the miner
sends (choice indexes, token ids aligned with logprobs, no output after a choice finished, no
more tokens than ``max_tokens``) and accumulates the normalized ``TextOutput``. A violation
raises ``RelayError``; the stream then ends with an in-band error event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Literal, Protocol, TypeVar

import msgspec

from core.errors import AppError
from core.miners import Outcome
from gateway.accounting import CostEstimate
from protocol.openai.common import ErrorDetail, ErrorResponse, Usage
from protocol.records import TextOutput

T = TypeVar("T")

ENCODER = msgspec.json.Encoder()


class RelayError(Exception):
    """The miner's output broke the protocol (after the first token)."""

    outcome = Outcome.BAD_RESPONSE


class TextRelay(Protocol[T]):
    output: TextOutput
    completion_tokens: int

    def feed(self, items: list[T]) -> bytes:
        """Client bytes for these miner chunks (``b""`` in aggregate mode or when nothing to
        send)."""

    def finish(self, done: bool) -> bytes:
        """The miner's stream ended (``done``: it sent ``[DONE]``). Raise ``RelayError`` unless
        every choice finished; return the trailing events (the usage chunk), without
        ``[DONE]``."""

    def response(self) -> bytes:
        """Aggregate mode: the whole JSON response."""


class TextPlan(Generic[T]):
    """Everything the pipeline needs to serve one validated text request."""

    __slots__ = (
        "body",
        "decode",
        "estimate",
        "kind",
        "miner_request",
        "new_relay",
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
        decode: Callable[[bytes], T],
        ready: Callable[[T], bool],
        new_relay: Callable[[], TextRelay[T]],
        stream: bool,
        estimate: CostEstimate,
        prompt_tokens: int,
    ) -> None:
        self.kind = kind
        self.path = path
        self.miner_request = miner_request
        self.body = ENCODER.encode(miner_request)
        self.decode = decode
        self.ready = ready
        self.new_relay = new_relay
        self.stream = stream
        self.estimate = estimate
        self.prompt_tokens = prompt_tokens


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def error_event(error: AppError) -> bytes:
    detail = ErrorDetail(
        message=error.message, type=error.openai_type, param=error.param, code=error.code
    )
    return b"data: " + ENCODER.encode(ErrorResponse(error=detail)) + b"\n\n"


def stream_failure_event(outcome: Outcome, message: str) -> bytes:
    """The in-band error that ends a stream which failed after the first byte."""
    if outcome is Outcome.TIMEOUT:
        error: AppError = AppError(f"The miner stopped responding: {message}.")
        error.code = "upstream_timeout"
    else:
        error = AppError(f"The miner's stream failed: {message}.")
        error.code = "upstream_error"
    error.openai_type = "server_error"
    return error_event(error)


def encode_event(payload: msgspec.Struct) -> bytes:
    return b"data: " + ENCODER.encode(payload) + b"\n\n"
