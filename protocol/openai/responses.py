"""`/v1/responses`: the request as clients send it, the response object and its stream events.

The gateway serves the Responses API statelessly on the chat path (``gateway.responses``), so
the request types stop at what can be mapped onto a chat request: text input, earlier function
calls and their outputs, function tools, ``tool_choice``, ``text.format``. Input items are typed
one by one (``input_item``) because a message item may omit its ``type``.

The response side mirrors OpenAI's objects field for field where the official SDKs require them
(``Response``, ``ResponseOutputMessage``, ``ResponseFunctionToolCall``, the stream events).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol.openai.chat import (
    Arguments,
    CallId,
    ModelName,
    Temperature,
    ToolName,
    TopP,
)

MAX_INPUT_ITEMS = 2048
MAX_TOOLS = 128

# --- the request -------------------------------------------------------------------------------


class InputText(msgspec.Struct, tag="input_text", tag_field="type", forbid_unknown_fields=True):
    text: str


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    """An earlier answer's text, as clients send back the output items they got."""

    text: str


class InputImage(msgspec.Struct, tag="input_image", tag_field="type"):
    pass


class InputFile(msgspec.Struct, tag="input_file", tag_field="type"):
    pass


class Refusal(msgspec.Struct, tag="refusal", tag_field="type"):
    refusal: str


ContentPart = InputText | OutputText | InputImage | InputFile | Refusal


class MessageItem(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPart]
    type: Literal["message"] = "message"
    id: str | None = None
    status: str | None = None
    phase: str | None = None


class FunctionCallItem(msgspec.Struct, forbid_unknown_fields=True):
    call_id: CallId
    name: ToolName
    arguments: Arguments
    type: Literal["function_call"] = "function_call"
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(msgspec.Struct, forbid_unknown_fields=True):
    call_id: CallId
    output: str | list[ContentPart]
    type: Literal["function_call_output"] = "function_call_output"
    id: str | None = None
    status: str | None = None


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem
ITEM_TYPES: dict[str, type[InputItem]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
}


class FunctionTool(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A function tool in the Responses shape (flat: no ``function`` wrapper)."""

    type: Literal["function"]
    name: ToolName
    description: Annotated[str, Meta(max_length=100_000)] | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["function"]
    name: ToolName


ToolChoice = Literal["none", "auto", "required"] | NamedFunction


class TextFormat(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``text.format``: ``text``, ``json_object``, or ``json_schema`` (name, schema, strict
    given flat, as the Responses API has them)."""

    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class TextConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    format: TextFormat | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: ModelName
    # A string, or input items (checked one by one: ``input_item``).
    input: str | Annotated[list[dict[str, Any]], Meta(max_length=MAX_INPUT_ITEMS)]
    instructions: str | None = None
    tools: Annotated[list[dict[str, Any]], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: Any | None = None
    background: bool | None = None
    include: list[str] | None = None
    reasoning: Any | None = None
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    max_tool_calls: Annotated[int, Meta(ge=1)] | None = None
    metadata: dict[str, str] | None = None
    user: Annotated[str, Meta(max_length=512)] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    prompt: Any | None = None


# --- the response ------------------------------------------------------------------------------


class OutputTextContent(msgspec.Struct, tag="output_text", tag_field="type"):
    text: str
    annotations: list[Any] = msgspec.field(default_factory=list)
    logprobs: list[Any] = msgspec.field(default_factory=list)


class OutputMessage(msgspec.Struct, tag="message", tag_field="type"):
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputTextContent]
    role: Literal["assistant"] = "assistant"


class FunctionCallOutput(msgspec.Struct, tag="function_call", tag_field="type"):
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"]


OutputItem = OutputMessage | FunctionCallOutput


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)


class IncompleteDetails(msgspec.Struct):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(msgspec.Struct):
    code: str
    message: str


class Response(msgspec.Struct):
    id: str
    created_at: int
    model: str
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    output: list[OutputItem]
    tools: list[FunctionTool]
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    text: TextConfig
    usage: ResponseUsage | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    previous_response_id: None = None
    store: bool = False
    background: bool = False
    truncation: Literal["disabled"] = "disabled"
    user: str | None = None
    object: Literal["response"] = "response"


# --- stream events (each is sent as ``event: <type>`` + ``data: <json>``) ----------------------


class ResponseEvent(msgspec.Struct, tag="response.created", tag_field="type"):
    """``response.created`` / ``in_progress`` / ``completed`` / ``incomplete`` / ``failed``:
    the same shape under other tags (``ResponseStateEvent``)."""

    sequence_number: int
    response: Response


class ResponseInProgress(ResponseEvent, tag="response.in_progress"):
    pass


class ResponseCompleted(ResponseEvent, tag="response.completed"):
    pass


class ResponseIncomplete(ResponseEvent, tag="response.incomplete"):
    pass


class ResponseFailed(ResponseEvent, tag="response.failed"):
    pass


class OutputItemAdded(msgspec.Struct, tag="response.output_item.added", tag_field="type"):
    sequence_number: int
    output_index: int
    item: OutputItem


class OutputItemDone(OutputItemAdded, tag="response.output_item.done"):
    pass


class ContentPartAdded(msgspec.Struct, tag="response.content_part.added", tag_field="type"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputTextContent


class ContentPartDone(ContentPartAdded, tag="response.content_part.done"):
    pass


class OutputTextDelta(msgspec.Struct, tag="response.output_text.delta", tag_field="type"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class OutputTextDone(msgspec.Struct, tag="response.output_text.done", tag_field="type"):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class ArgumentsDelta(
    msgspec.Struct, tag="response.function_call_arguments.delta", tag_field="type"
):
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDone(msgspec.Struct, tag="response.function_call_arguments.done", tag_field="type"):
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


class ErrorEvent(msgspec.Struct, tag="error", tag_field="type"):
    sequence_number: int
    message: str
    code: str | None = None
    param: str | None = None


StreamEvent = (
    ResponseEvent
    | ResponseInProgress
    | ResponseCompleted
    | ResponseIncomplete
    | ResponseFailed
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | ArgumentsDelta
    | ArgumentsDone
    | ErrorEvent
)
