"""The dev chat model's template (``inference.tiny.CHAT_TEMPLATE``, rendered by Hugging Face's
``apply_chat_template`` in the engines) and the gateway's rendering
(``protocol.prompts.render_llama3``, what it counts prompt tokens on) are the same text, with
and without tools and tool calls."""

from __future__ import annotations

import pytest

from inference.base import ChatTurn, TextRequest, ToolCallText
from inference.requests import chat_prompt_ids
from inference.tiny import build_tiny_tokenizer
from protocol.prompts import Turn, render_llama3
from protocol.tool_calls import Call

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather — in °C ✓",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "noop"}},
]
CONVERSATIONS = [
    [Turn(role="user", content="hi")],
    [
        Turn(role="system", content="Be brief."),
        Turn(role="user", content="Weather in Paris?"),
        Turn(
            role="assistant",
            content="",
            tool_calls=(Call(name="get_weather", arguments='{"city": "Paris"}'),),
        ),
        Turn(role="tool", content="21 °C", tool_call_id="c1"),
        Turn(role="assistant", content="It is 21 °C.", tool_calls=()),
        Turn(role="user", content="<|eot_id|> inside ✓"),
    ],
]


@pytest.mark.parametrize("turns", CONVERSATIONS)
@pytest.mark.parametrize("tools", [TOOLS, []])
def test_template_and_gateway_rendering_agree(turns: list[Turn], tools: list[dict]) -> None:
    tokenizer = build_tiny_tokenizer()
    request = TextRequest(
        max_tokens=1,
        messages=tuple(
            ChatTurn(
                role=turn.role,
                content=turn.content,
                tool_calls=tuple(ToolCallText(c.name, c.arguments) for c in turn.tool_calls),
                tool_call_id=turn.tool_call_id,
            )
            for turn in turns
        ),
        tools=tuple(tools),
    )
    ids = chat_prompt_ids(tokenizer, request)
    assert tokenizer.decode(ids) == render_llama3(turns, tools)
