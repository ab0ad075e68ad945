"""`/v1/chat/completions`: the request as clients send it, the responses and chunks we return.

Requests are validated strictly at the gateway (an unknown field is a 400 naming it, as OpenAI
does). Fields OpenAI defines that no miner can honour (tools, JSON mode, penalties, logit bias)
are parsed so the gateway can refuse them with a precise message instead of silently ignoring them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.openai.common import MAX_CHOICES, TokenLogprob, Usage

MAX_MESSAGES = 2048
MAX_STOP = 4
MAX_STOP_LENGTH = 256
MAX_MODEL_NAME = 256

Role = Literal["system", "developer", "user", "assistant", "tool"]
ModelName = Annotated[str, Meta(min_length=1, max_length=MAX_MODEL_NAME)]
Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]
TopP = Annotated[float, Meta(ge=0.0, le=1.0)]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
Seed = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
StopText = Annotated[str, Meta(min_length=1, max_length=MAX_STOP_LENGTH)]
Stop = StopText | Annotated[list[StopText], Meta(max_length=MAX_STOP)]
PositiveInt = Annotated[int, Meta(ge=1)]


class TextPart(msgspec.Struct, tag="text", tag_field="type", forbid_unknown_fields=True):
    text: str


class ImageUrlPart(msgspec.Struct, tag="image_url", tag_field="type"):
    image_url: Any


class InputAudioPart(msgspec.Struct, tag="input_audio", tag_field="type"):
    input_audio: Any


class FilePart(msgspec.Struct, tag="file", tag_field="type"):
    file: Any


class RefusalPart(msgspec.Struct, tag="refusal", tag_field="type", forbid_unknown_fields=True):
    refusal: str


ContentPart = TextPart | ImageUrlPart | InputAudioPart | FilePart | RefusalPart


class ChatMessage(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None
    function_call: Any | None = None


class StreamOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ResponseFormat(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: Any | None = None


class ChatCompletionRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: ModelName
    messages: Annotated[list[ChatMessage], Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Annotated[int, Meta(ge=1, le=MAX_CHOICES)] | None = None
    stop: Stop | None = None
    seed: Seed | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, float] | None = None
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: Any | None = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: Any | None = None
    # Accepted and ignored: they change nothing about the generated text.
    user: Annotated[str, Meta(max_length=512)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    modalities: list[str] | None = None
    audio: Any | None = None
    prediction: Any | None = None
    web_search_options: Any | None = None
    verbosity: str | None = None


# ---------------------------------------------------------------------------------------------
# Responses we send to clients.

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class ChoiceLogprobs(msgspec.Struct):
    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class AssistantMessage(msgspec.Struct):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None = None


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None
    finish_reason: FinishReason | None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None


class ChunkDelta(msgspec.Struct, omit_defaults=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType = UNSET


class ChunkChoice(msgspec.Struct):
    index: int
    delta: ChunkDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    system_fingerprint: str | UnsetType | None = UNSET
    usage: Usage | UnsetType | None = UNSET
