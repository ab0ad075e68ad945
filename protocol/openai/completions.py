"""`/v1/completions` (legacy text completions): request, response and stream chunks."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.openai.chat import (
    ModelName,
    Penalty,
    PositiveInt,
    Seed,
    Stop,
    StreamOptions,
    Temperature,
    TopP,
)
from protocol.openai.common import MAX_CHOICES, Usage
from protocol.openai.shapes import LooseTexts

# OpenAI accepts a string, a list of strings, a list of token ids or a list of token-id lists;
# `protocol.openai.shapes.prompt_of` checks which and returns the one prompt.
Prompt = LooseTexts


class CompletionRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: ModelName
    prompt: Prompt
    max_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Annotated[int, Meta(ge=1, le=MAX_CHOICES)] | None = None
    stop: Stop | None = None
    seed: Seed | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None
    echo: bool | None = None
    suffix: str | None = None
    best_of: Annotated[int, Meta(ge=1, le=MAX_CHOICES)] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, float] | None = None
    user: Annotated[str, Meta(max_length=512)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None


class CompletionLogprobs(msgspec.Struct):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


FinishReason = Literal["stop", "length", "content_filter"]


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: FinishReason | None


class Completion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    object: Literal["text_completion"] = "text_completion"
    system_fingerprint: str | None = None


class CompletionChunk(msgspec.Struct):
    """A streamed completion event: OpenAI reuses the `text_completion` object for chunks."""

    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    object: Literal["text_completion"] = "text_completion"
    usage: Usage | UnsetType | None = UNSET
