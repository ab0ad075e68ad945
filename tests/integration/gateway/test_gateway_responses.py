"""`/v1/responses` through the official openai SDK against a real gateway and a real miner running
the dev chat model: text, a named function call whose arguments validate, a tool round trip with
``function_call_output``, ``text.format`` json_schema, ``responses.stream`` for text and tools
(the SDK's stream helper assembles the events), the raw event sequence, ``max_output_tokens``
giving an incomplete response, usage equal to the chat path's, and the refusals of a stateless
API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jsonschema
import openai
import pydantic
import pytest

from tests.integration.gateway.conftest import CHAT, Stack, stack

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}
PLAN = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 20},
        "steps": {"type": "integer", "minimum": 1, "maximum": 9},
    },
    "required": ["title", "steps"],
    "additionalProperties": False,
}
ASK = "What is the weather in Paris this week?"


@pytest.fixture(scope="module")
async def responses_stack(wallet_root: Path, redis_url: str) -> AsyncIterator[Stack]:
    async with stack(wallet_root, redis_url, miners={"resp1": [CHAT]}) as running:
        yield running


async def test_text_input_gives_a_completed_message(responses_stack: Stack) -> None:
    client = responses_stack.client
    response = await client.responses.create(
        model=CHAT,
        instructions="Answer briefly.",
        input="Hello!",
        max_output_tokens=12,
        temperature=0.7,
    )
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert response.instructions == "Answer briefly."
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text == response.output[0].content[0].text  # type: ignore[union-attr]
    assert response.usage is not None
    assert 0 < response.usage.output_tokens <= 12
    # The same conversation through chat counts the same prompt tokens.
    chat = await client.chat.completions.create(
        model=CHAT,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hello!"},
        ],
        max_tokens=1,
    )
    assert chat.usage is not None
    assert response.usage.input_tokens == chat.usage.prompt_tokens
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )


async def test_max_output_tokens_cuts_to_an_incomplete_response(responses_stack: Stack) -> None:
    response = await responses_stack.client.responses.create(
        model=CHAT, input="Tell me a long story.", max_output_tokens=3, temperature=1.0
    )
    if response.status == "incomplete":
        assert response.incomplete_details is not None
        assert response.incomplete_details.reason == "max_output_tokens"
        assert response.usage is not None and response.usage.output_tokens == 3
    else:  # the model may end on its own within three tokens
        assert response.usage is not None and response.usage.output_tokens <= 3


@pytest.mark.parametrize("temperature", [0.0, 1.0])
async def test_a_named_function_call_round_trip(responses_stack: Stack, temperature: float) -> None:
    client = responses_stack.client
    response = await client.responses.create(
        model=CHAT,
        input=ASK,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=200,
        temperature=temperature,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) >= 1 and response.status == "completed"
    call = calls[0]
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    # The client runs the tool and sends the result back, with the earlier output items.
    follow_up = await client.responses.create(
        model=CHAT,
        input=[
            {"role": "user", "content": ASK},
            *[item.model_dump(exclude_none=True) for item in response.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=16,
    )
    assert follow_up.status in ("completed", "incomplete")
    assert follow_up.usage is not None
    assert follow_up.usage.input_tokens > response.usage.input_tokens  # type: ignore[union-attr]


async def test_text_format_json_schema_is_valid_json(responses_stack: Stack) -> None:
    response = await responses_stack.client.responses.create(
        model=CHAT,
        input="Plan a trip.",
        text={"format": {"type": "json_schema", "name": "plan", "schema": PLAN, "strict": True}},
        max_output_tokens=200,
        temperature=0.7,
    )
    assert response.status == "completed"
    jsonschema.validate(json.loads(response.output_text), PLAN)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


async def test_parse_with_a_pydantic_model_and_metadata_echoed(responses_stack: Stack) -> None:
    class Plan(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        title: str = pydantic.Field(max_length=20)
        steps: int = pydantic.Field(ge=1, le=9)

    response = await responses_stack.client.responses.parse(
        model=CHAT,
        input="Plan a trip.",
        text_format=Plan,
        max_output_tokens=200,
        temperature=0.7,
        metadata={"team": "travel"},
    )
    assert response.status == "completed"
    assert isinstance(response.output_parsed, Plan)
    assert response.metadata == {"team": "travel"}


async def test_the_sdk_stream_helper_assembles_text(responses_stack: Stack) -> None:
    deltas: list[str] = []
    # (The SDK's helper wants ``response.completed``: an answer cut by max_output_tokens ends
    # with ``response.incomplete``, so the greedy answer here must end on its own.)
    async with responses_stack.client.responses.stream(
        model=CHAT, input="Hello!", max_output_tokens=200, temperature=0.0
    ) as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert final.output_text == "".join(deltas)
    assert final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens < 200


async def test_the_sdk_stream_helper_assembles_a_function_call(responses_stack: Stack) -> None:
    arguments: list[str] = []
    async with responses_stack.client.responses.stream(
        model=CHAT,
        input=ASK,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=200,
    ) as stream:
        async for event in stream:
            if event.type == "response.function_call_arguments.done":
                arguments.append(event.arguments)
        final = await stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [call.arguments for call in calls] == arguments
    for call in calls:
        jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])


async def test_the_event_sequence_on_the_wire(responses_stack: Stack) -> None:
    body = {"model": CHAT, "input": "Hi", "stream": True, "max_output_tokens": 6}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            responses_stack.gateway_url + "/v1/responses",
            json=body,
            headers={"Authorization": f"Bearer {responses_stack.api_key}"},
        ) as reply,
    ):
        assert reply.status == 200
        raw = (await reply.read()).decode()
    events = [block for block in raw.split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    datas = [json.loads(block.split("\n")[1].removeprefix("data: ")) for block in events]
    assert names == [data["type"] for data in datas]
    assert [data["sequence_number"] for data in datas] == list(range(len(datas)))
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert names[-1] in ("response.completed", "response.incomplete")
    assert "[DONE]" not in raw
    text = "".join(d["delta"] for d in datas if d["type"] == "response.output_text.delta")
    assert datas[-1]["response"]["output"][0]["content"][0]["text"] == text


async def test_what_a_stateless_api_refuses(responses_stack: Stack) -> None:
    client = responses_stack.client
    for extra in (
        {"store": True},
        {"previous_response_id": "resp_123"},
        {"reasoning": {"effort": "high"}},
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model=CHAT, input="Hi", **extra)  # type: ignore[arg-type]
        error = refused.value.body
        assert isinstance(error, dict) and error["param"] == next(iter(extra))
        assert error["code"] == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model=CHAT, input=[{"type": "web_search_call", "id": "ws_1"}])
    assert "not supported" in str(refused.value)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(
            model=CHAT,
            input="Hi",
            tools=[{"type": "web_search"}],  # type: ignore[list-item]
        )
