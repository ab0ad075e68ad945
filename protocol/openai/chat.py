"""`/v1/chat/completions`: the request as clients send it, the responses and chunks we return.

Requests are validated strictly at the gateway (an unknown field is a 400 naming it, as OpenAI
does). Function tools, ``tool_choice`` and the tool calls of earlier turns are typed here;
fields OpenAI defines that the gateway refuses are parsed so it can say so precisely instead of
silently ignoring them.
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


MAX_TOOLS = 128
MAX_TOOL_CALLS = 64
ToolName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CallId = Annotated[str, Meta(min_length=1, max_length=256)]
Arguments = Annotated[str, Meta(max_length=1_000_000)]


class FunctionCall(msgspec.Struct, forbid_unknown_fields=True):
    """A call as the model made it: ``arguments`` is JSON text."""

    name: ToolName
    arguments: Arguments


class ToolCall(msgspec.Struct, forbid_unknown_fields=True):
    id: CallId
    function: FunctionCall
    type: Literal["function"] = "function"


class FunctionDefinition(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: ToolName
    description: Annotated[str, Meta(max_length=100_000)] | None = None
    # A JSON Schema object (checked by the gateway); absent: no arguments.
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(msgspec.Struct, tag="function", tag_field="type", forbid_unknown_fields=True):
    function: FunctionDefinition


class CustomTool(msgspec.Struct, tag="custom", tag_field="type"):
    custom: Any


Tool = FunctionTool | CustomTool


class NamedFunction(msgspec.Struct, forbid_unknown_fields=True):
    name: ToolName


class NamedToolChoice(msgspec.Struct, tag="function", tag_field="type", forbid_unknown_fields=True):
    function: NamedFunction


class AllowedToolsChoice(msgspec.Struct, tag="allowed_tools", tag_field="type"):
    allowed_tools: Any


class CustomToolChoice(msgspec.Struct, tag="custom", tag_field="type"):
    custom: Any


ToolChoice = (
    Literal["none", "auto", "required"] | NamedToolChoice | AllowedToolsChoice | CustomToolChoice
)


class ChatMessage(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: Annotated[list[ToolCall], Meta(max_length=MAX_TOOL_CALLS)] | None = None
    tool_call_id: CallId | None = None
    function_call: Any | None = None


class StreamOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class JsonSchemaFormat(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    # A JSON Schema object (checked by the gateway); absent: any JSON object.
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


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
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
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
    tool_calls: list[ToolCall] | UnsetType = UNSET


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


class ChunkFunction(msgspec.Struct, omit_defaults=True):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ChunkToolCall(msgspec.Struct, omit_defaults=True):
    """A streamed tool call: the first delta of call ``index`` carries its ``id``, ``type`` and
    ``function.name``; ``function.arguments`` arrives in fragments to be concatenated."""

    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: ChunkFunction | UnsetType = UNSET


class ChunkDelta(msgspec.Struct, omit_defaults=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    tool_calls: list[ChunkToolCall] | UnsetType = UNSET


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
