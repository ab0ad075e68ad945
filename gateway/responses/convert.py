"""A Responses API request as the chat request it means (the API is served on the chat path).

- ``instructions`` → a leading system message; ``input`` as a string → one user message.
- Input items: ``message`` (``input_text`` / ``output_text`` parts joined) → a message of that
  role (``developer`` becomes ``system``); ``function_call`` → a tool call on the assistant
  turn (consecutive calls share one turn); ``function_call_output`` → a ``tool`` message.
- ``tools`` (flat function tools) → chat function tools; ``tool_choice`` likewise;
  ``text.format`` → ``response_format``; ``max_output_tokens`` → ``max_tokens``.

Refused with a 400 naming the field: ``store: true``, ``previous_response_id`` and
``conversation`` (the API is stateless here), ``background``, ``reasoning`` (no reasoning
models), ``truncation: auto``, ``top_logprobs``, ``include`` values other than
``reasoning.encrypted_content`` (there is none to include), ``prompt`` templates, images and
files in the input, non-function tools, and input items of other types.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.errors import InvalidRequest
from gateway.validation import convert, unsupported
from protocol.openai.chat import (
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    FunctionDefinition,
    JsonSchemaFormat,
    NamedToolChoice,
    ResponseFormat,
    ToolCall,
)
from protocol.openai.chat import FunctionTool as ChatFunctionTool
from protocol.openai.chat import NamedFunction as ChatNamedFunction
from protocol.openai.responses import (
    ITEM_TYPES,
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputFile,
    InputImage,
    InputText,
    MessageItem,
    NamedFunction,
    OutputText,
    Refusal,
    ResponsesRequest,
    TextConfig,
    TextFormat,
    ToolChoice,
)

STATELESS = (
    "This gateway's Responses API is stateless: it stores no responses or conversations. "
    "Send the whole conversation in 'input' (earlier output items included)."
)


class Mapped(msgspec.Struct, frozen=True):
    """The chat request, and what the Response object echoes back."""

    chat: ChatCompletionRequest
    instructions: str | None
    metadata: dict[str, str] | None
    tools: list[FunctionTool]
    tool_choice: ToolChoice
    text: TextConfig


def _refuse_stateful(request: ResponsesRequest) -> None:
    if request.store:
        raise unsupported("store", STATELESS + " Send store: false or omit it.")
    if request.previous_response_id is not None:
        raise unsupported("previous_response_id", STATELESS)
    if request.conversation is not None:
        raise unsupported("conversation", STATELESS)
    if request.background:
        raise unsupported("background", "Background responses are not supported.")
    if request.reasoning is not None:
        raise unsupported("reasoning", "reasoning is not supported: no model here reasons.")
    if request.truncation == "auto":
        raise unsupported("truncation", "truncation 'auto' is not supported; use 'disabled'.")
    if request.top_logprobs:
        raise unsupported(
            "top_logprobs",
            "top_logprobs is not supported on /v1/responses; use /v1/chat/completions.",
        )
    if request.prompt is not None:
        raise unsupported("prompt", "Stored prompt templates are not supported.")
    for value in request.include or ():
        if value != "reasoning.encrypted_content":
            raise unsupported("include", f"include '{value}' is not supported.")


def _text(content: str | list[ContentPart], param: str) -> str:
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for index, part in enumerate(content):
        if isinstance(part, InputText | OutputText):
            texts.append(part.text)
        elif isinstance(part, Refusal):
            texts.append(part.refusal)
        elif isinstance(part, InputImage | InputFile):
            kind = "Images" if isinstance(part, InputImage) else "Files"
            raise unsupported(f"{param}[{index}]", f"{kind} are not supported as input.")
    return "".join(texts)


def _item(
    raw: dict[str, Any], param: str
) -> MessageItem | FunctionCallItem | FunctionCallOutputItem:
    kind = raw.get("type", "message")
    item_type = ITEM_TYPES.get(kind) if isinstance(kind, str) else None
    if item_type is None:
        raise unsupported(
            f"{param}.type",
            f"Input items of type {kind!r} are not supported; send messages, function_call "
            "and function_call_output items.",
        )
    try:
        return msgspec.convert(raw, type=item_type)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(
            f"Invalid value for '{param}': {exc}", param=param, code="invalid_value"
        ) from None


def _messages(request: ResponsesRequest) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if request.instructions:
        messages.append(ChatMessage(role="system", content=request.instructions))
    if isinstance(request.input, str):
        messages.append(ChatMessage(role="user", content=request.input))
        return messages
    for index, raw in enumerate(request.input):
        param = f"input[{index}]"
        item = _item(raw, param)
        if isinstance(item, MessageItem):
            role = "system" if item.role == "developer" else item.role
            messages.append(ChatMessage(role=role, content=_text(item.content, param + ".content")))
        elif isinstance(item, FunctionCallItem):
            call = ToolCall(
                id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments)
            )
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and last.tool_calls is not None:
                last.tool_calls.append(call)
            elif last is not None and last.role == "assistant" and last.tool_calls is None:
                last.tool_calls = [call]
            else:
                messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        else:
            messages.append(
                ChatMessage(
                    role="tool",
                    tool_call_id=item.call_id,
                    content=_text(item.output, param + ".output"),
                )
            )
    if not messages:
        raise InvalidRequest("'input' must not be empty.", param="input", code="invalid_value")
    return messages


def _tools(request: ResponsesRequest) -> list[FunctionTool]:
    tools: list[FunctionTool] = []
    for index, raw in enumerate(request.tools or ()):
        if raw.get("type") != "function":
            raise unsupported(
                f"tools[{index}].type",
                f"Tools of type {raw.get('type')!r} are not supported; use function tools.",
            )
        tools.append(convert(raw, FunctionTool))
    return tools


def _tool_choice(request: ResponsesRequest) -> ToolChoice | None:
    choice = request.tool_choice
    if choice is None or isinstance(choice, str):
        if choice not in (None, "none", "auto", "required"):
            raise InvalidRequest(
                "tool_choice must be 'none', 'auto', 'required' or a function.",
                param="tool_choice",
                code="invalid_value",
            )
        return choice  # type: ignore[return-value]
    if choice.get("type") != "function":
        raise unsupported("tool_choice", "Only function tools can be chosen.")
    return convert(choice, NamedFunction)


def _response_format(text: TextConfig | None) -> ResponseFormat | None:
    fmt = text.format if text is not None else None
    if fmt is None:
        return None
    if fmt.type != "json_schema":
        return ResponseFormat(type=fmt.type)
    if fmt.name is None or fmt.schema is None:
        raise InvalidRequest(
            "text.format of type json_schema needs 'name' and 'schema'.",
            param="text.format",
            code="invalid_value",
        )
    return ResponseFormat(
        type="json_schema",
        json_schema=JsonSchemaFormat(
            name=fmt.name, description=fmt.description, schema=fmt.schema, strict=fmt.strict
        ),
    )


def to_chat(request: ResponsesRequest) -> Mapped:
    """The chat request this Responses request means (400 for what cannot be served)."""
    _refuse_stateful(request)
    tools = _tools(request)
    tool_choice = _tool_choice(request)
    chat_choice: Any = tool_choice
    if isinstance(tool_choice, NamedFunction):
        chat_choice = NamedToolChoice(function=ChatNamedFunction(name=tool_choice.name))
    chat = ChatCompletionRequest(
        model=request.model,
        messages=_messages(request),
        max_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stream=request.stream,
        response_format=_response_format(request.text),
        tools=[
            ChatFunctionTool(
                function=FunctionDefinition(
                    name=tool.name,
                    description=tool.description,
                    parameters=tool.parameters,
                    strict=tool.strict,
                )
            )
            for tool in tools
        ]
        or None,
        tool_choice=chat_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        user=request.user,
    )
    echo_text = request.text or TextConfig()
    if echo_text.format is None:
        echo_text = TextConfig(format=TextFormat(type="text"), verbosity=echo_text.verbosity)
    return Mapped(
        chat=chat,
        instructions=request.instructions,
        metadata=request.metadata,
        tools=tools,
        tool_choice=tool_choice if tool_choice is not None else "auto",
        text=echo_text,
    )
