"""What the client is sent besides the renderers' chunks: the JSON encoder, SSE data events,
``usage`` objects, and the in-band error event that ends a stream which failed after its first
byte."""

from __future__ import annotations

import msgspec

from core.errors import AppError
from core.miners import Outcome
from protocol.openai.common import ErrorDetail, ErrorResponse, Usage

ENCODER = msgspec.json.Encoder()


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def encode_event(payload: msgspec.Struct) -> bytes:
    return b"data: " + ENCODER.encode(payload) + b"\n\n"


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
