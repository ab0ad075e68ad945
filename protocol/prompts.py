"""Chat messages as the model reads them: one normalisation, and the dev template's rendering.

``turns_of`` turns an OpenAI ``messages`` list into ``Turn``s (role, text, the tool calls an
assistant made, the call a tool message answers), refusing what no model here can read with a
``PromptError`` naming the field; the gateway (``core.miners.requests``) and the miners'
engines (``inference.requests``) both use it, so they agree on what a conversation says.
``developer`` is read as ``system``; text content parts are joined with ``"\\n"`` (as vLLM
does).

``render_llama3`` renders turns and tools exactly as the dev chat model's template does
(``inference.tiny.CHAT_TEMPLATE``; a test holds the two equal): the Llama 3 layout, and when
tools are given a system block listing them with the ``hermes`` call format. The gateway counts
prompt tokens on this text; the engines render with the model's own template.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from protocol.openai.chat import ChatMessage, RefusalPart, TextPart
from protocol.tool_calls import Call, ToolFormat, render_call

BEGIN = "<|begin_of_text|>"
HEADER_START = "<|start_header_id|>"
HEADER_END = "<|end_header_id|>"
EOT = "<|eot_id|>"
TOOLS_PREAMBLE = (
    "You can call these tools. To call one, answer with "
    '<tool_call>{"name": <name>, "arguments": <arguments object>}</tool_call>.\n<tools>'
)


class PromptError(ValueError):
    """A message cannot be read. ``unsupported``: valid for OpenAI, not served here."""

    def __init__(self, message: str, *, param: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.param = param
        self.unsupported = unsupported


class Turn(msgspec.Struct, frozen=True):
    role: str
    content: str
    tool_calls: tuple[Call, ...] = ()
    tool_call_id: str | None = None


def _text(index: int, message: ChatMessage) -> str:
    where = f"messages[{index}]"
    content = message.content
    if content is None:
        if message.role == "assistant":
            return ""
        raise PromptError(f"'{where}.content' is required.", param=f"{where}.content")
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for position, part in enumerate(content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            texts.append(part.refusal)
        else:
            raise PromptError(
                "Only text content parts are supported by this model.",
                param=f"{where}.content[{position}]",
                unsupported=True,
            )
    return "\n".join(texts)


def turns_of(messages: Sequence[ChatMessage]) -> list[Turn]:
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.function_call is not None:
            raise PromptError(
                "function_call in messages is not supported; use tool_calls.",
                param=f"{where}.function_call",
                unsupported=True,
            )
        if message.tool_calls and message.role != "assistant":
            raise PromptError(
                "Only assistant messages carry tool_calls.", param=f"{where}.tool_calls"
            )
        if message.role == "tool" and not message.tool_call_id:
            raise PromptError(
                "A tool message needs the tool_call_id it answers.", param=f"{where}.tool_call_id"
            )
        calls = tuple(
            Call(name=call.function.name, arguments=call.function.arguments)
            for call in message.tool_calls or ()
        )
        turns.append(
            Turn(
                role="system" if message.role == "developer" else message.role,
                content=_text(index, message),
                tool_calls=calls,
                tool_call_id=message.tool_call_id if message.role == "tool" else None,
            )
        )
    return turns


def tool_definition(tool: Any) -> dict[str, Any]:
    """A function tool as chat templates receive it, in the form vLLM's OpenAI server gives its
    template (its pydantic models): ``type``, then ``function`` with ``name``, ``description``
    and ``parameters`` always present (null when absent) and ``strict`` only when set. Every
    renderer (the gateway's count, the engines, the checker) uses this form, so a prompt a
    vLLM miner's server renders equals the one the checker scores."""
    plain = msgspec.to_builtins(tool)
    function = plain.get("function") or {}
    definition: dict[str, Any] = {
        "name": function.get("name"),
        "description": function.get("description"),
        "parameters": function.get("parameters"),
    }
    if function.get("strict") is not None:
        definition["strict"] = function["strict"]
    return {"type": plain.get("type", "function"), "function": definition}


def tool_json(tool: Any) -> str:
    """A tool definition as the template writes it (Hugging Face's ``tojson``)."""
    return json.dumps(tool, ensure_ascii=False)


def render_llama3(
    turns: Sequence[Turn], tools: Sequence[Any] = (), fmt: ToolFormat = "hermes"
) -> str:
    """The prompt text, generation header included (``tools``: plain JSON-able definitions)."""
    parts = [BEGIN]
    if tools:
        listed = "".join("\n" + tool_json(tool) for tool in tools)
        parts.append(f"{HEADER_START}system{HEADER_END}\n\n{TOOLS_PREAMBLE}{listed}\n</tools>{EOT}")
    for turn in turns:
        calls = "".join(render_call(call, fmt) for call in turn.tool_calls)
        parts.append(f"{HEADER_START}{turn.role}{HEADER_END}\n\n{turn.content}{calls}{EOT}")
    parts.append(f"{HEADER_START}assistant{HEADER_END}\n\n")
    return "".join(parts)
