"""Tool calling and structured outputs through the official openai SDK, against a real gateway and
a real miner running the dev chat model (decoding under xgrammar grammars): named and required
tool calls whose arguments validate against the function's schema, ``auto``, a multi-turn
exchange with a tool result, streamed tool calls assembled by the SDK's stream helper,
``chat.completions.parse`` with a pydantic model, ``json_object``, and the prompt tokens (tools
included) equal to the miner's own count."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jsonschema
import msgspec
import openai
import pydantic
import pytest

from tests.integration.gateway.conftest import CHAT, Stack, stack
from tests.support.miner import SignedClient, sse_data
from tests.support.wallets import make_wallet

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 8}},
            "required": ["zone"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris this week?"}]


@pytest.fixture(scope="module")
async def tools_stack(wallet_root: Path, redis_url: str) -> AsyncIterator[Stack]:
    async with stack(wallet_root, redis_url, miners={"tools1": [CHAT]}) as running:
        yield running


def _arguments_valid(call: object, tool: dict) -> dict:
    arguments = json.loads(call.function.arguments)  # type: ignore[attr-defined]
    jsonschema.validate(arguments, tool["function"]["parameters"])
    return arguments


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0])
async def test_a_named_function_is_called_with_valid_arguments(
    tools_stack: Stack, temperature: float
) -> None:
    completion = await tools_stack.client.chat.completions.create(
        model=CHAT,
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
        temperature=temperature,
        seed=7,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    _arguments_valid(call, WEATHER)
    assert completion.usage is not None and completion.usage.prompt_tokens > 100  # tools count


async def test_required_calls_one_of_the_tools(tools_stack: Stack) -> None:
    completion = await tools_stack.client.chat.completions.create(
        model=CHAT, messages=ASK, tools=[WEATHER, TIME], tool_choice="required", max_tokens=200
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name in ("get_weather", "get_time")
    _arguments_valid(call, WEATHER if call.function.name == "get_weather" else TIME)


async def test_auto_answers_text_or_calls(tools_stack: Stack) -> None:
    completion = await tools_stack.client.chat.completions.create(
        model=CHAT, messages=ASK, tools=[WEATHER], max_tokens=32, seed=3
    )
    choice = completion.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
    else:
        assert choice.finish_reason in ("stop", "length") and choice.message.content is not None


async def test_a_multi_turn_exchange_with_a_tool_result(tools_stack: Stack) -> None:
    client = tools_stack.client
    first = await client.chat.completions.create(
        model=CHAT,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
    )
    message = first.choices[0].message
    [call] = message.tool_calls or []
    second = await client.chat.completions.create(
        model=CHAT,
        messages=[
            *ASK,
            message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
        ],
        tools=[WEATHER],
        max_tokens=16,
    )
    assert second.choices[0].message.content is not None
    assert second.usage is not None
    assert second.usage.prompt_tokens > first.usage.prompt_tokens  # type: ignore[union-attr]


async def test_streamed_tool_calls_are_assembled_by_the_sdk(tools_stack: Stack) -> None:
    async with tools_stack.client.chat.completions.stream(
        model=CHAT,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    _arguments_valid(call, WEATHER)


class Forecast(pydantic.BaseModel):
    city: str = pydantic.Field(max_length=12)
    days: int = pydantic.Field(ge=1, le=7)
    sunny: bool


async def test_parse_returns_the_pydantic_object(tools_stack: Stack) -> None:
    completion = await tools_stack.client.chat.completions.parse(
        model=CHAT, messages=ASK, response_format=Forecast, max_tokens=200, seed=11
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert 1 <= parsed.days <= 7


async def test_json_object_is_a_json_object(tools_stack: Stack) -> None:
    completion = await tools_stack.client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
        max_tokens=300,
        temperature=0.0,
    )
    choice = completion.choices[0]
    if choice.finish_reason == "stop":
        assert isinstance(json.loads(choice.message.content or ""), dict)
    else:  # cut by max_tokens: OpenAI returns the partial JSON too
        assert choice.finish_reason == "length"


async def test_tool_requests_the_gateway_refuses(tools_stack: Stack) -> None:
    client = tools_stack.client
    bad = [
        (
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        ({"tool_choice": "required", "tools": None}, "tool_choice"),
        (
            {"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": 3}}}]},
            "tools[0].function.parameters",
        ),
        ({"functions": [{"name": "x"}]}, "functions"),
    ]
    for extra, param in bad:
        arguments = {"tools": [WEATHER], **extra}
        if arguments["tools"] is None:
            del arguments["tools"]
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model=CHAT, messages=ASK, max_tokens=8, **arguments
            )
        assert refused.value.body["param"] == param, refused.value.body  # type: ignore[index]
        assert refused.value.body["code"]  # type: ignore[index]


async def test_prompt_tokens_with_tools_equal_the_miners_count(
    tools_stack: Stack, wallet_root: Path
) -> None:
    """The gateway counts a prompt with tools and earlier tool calls exactly as the miner's
    model renders it (``protocol.prompts`` against the dev model's chat template)."""
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 °C ✓"},
    ]
    body = {"model": CHAT, "messages": messages, "tools": [WEATHER, TIME], "max_tokens": 2}
    completion = await tools_stack.client.chat.completions.create(**body, seed=1)  # type: ignore[arg-type]
    validator = make_wallet(wallet_root, "validator")
    miner = next(r for r in tools_stack.routes if r.task == CHAT)
    async with aiohttp.ClientSession() as session:
        signed = SignedClient(session, miner.url, validator.hotkey, miner.hotkey)
        async with signed.post(
            "/v1/chat/completions",
            {**body, "stream": True, "stream_options": {"include_usage": True}, "logprobs": True},
        ) as response:
            events = sse_data(await response.read())
    miner_usage = msgspec.json.decode(events[-2])["usage"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == miner_usage["prompt_tokens"]
