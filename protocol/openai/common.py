"""Pieces shared by the OpenAI request and response types: usage, logprobs, the error envelope."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

# Size limits applied to everything a miner sends us. Miners are untrusted: these bound memory.
MAX_TOKEN_TEXT = 256
MAX_TOP_LOGPROBS = 20
MAX_CHOICES = 16

TokenText = Annotated[str, Meta(max_length=MAX_TOKEN_TEXT)]
Logprob = Annotated[float, Meta(le=0.0)]


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(msgspec.Struct, forbid_unknown_fields=True):
    token: TokenText
    logprob: Logprob
    bytes: Annotated[list[Annotated[int, Meta(ge=0, le=255)]], Meta(max_length=64)] | None = None


class TokenLogprob(msgspec.Struct, forbid_unknown_fields=True):
    """One generated token: OpenAI's `ChatCompletionTokenLogprob`.

    The logprob is the model's raw log-softmax at temperature 1 (as OpenAI and vLLM report it),
    not the logprob under the request's sampling temperature.
    """

    token: TokenText
    logprob: Logprob
    bytes: Annotated[list[Annotated[int, Meta(ge=0, le=255)]], Meta(max_length=64)] | None = None
    top_logprobs: Annotated[list[TopLogprob], Meta(max_length=MAX_TOP_LOGPROBS)] = []


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct):
    """The OpenAI error envelope: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail
