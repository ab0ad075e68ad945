"""LangChain against the gateway (``langchain-openai``'s ``ChatOpenAI``, a dev dependency), as an
app built on it would call it: ``bind_tools`` with a tool-message round trip, and
``with_structured_output`` into a pydantic model. Real gateway, real miner, dev chat model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pydantic
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.integration.gateway.conftest import CHAT, Stack, stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def lc_stack(wallet_root: Path, redis_url: str) -> AsyncIterator[Stack]:
    async with stack(wallet_root, redis_url, miners={"lc1": [CHAT]}) as running:
        yield running


def chat_model(running: Stack, *, max_tokens: int = 200) -> ChatOpenAI:
    return ChatOpenAI(
        model=CHAT,
        base_url=running.gateway_url + "/v1",
        api_key=running.api_key,  # type: ignore[arg-type]
        max_retries=0,
        max_tokens=max_tokens,  # type: ignore[call-arg]
    )


class WeatherQuery(pydantic.BaseModel):
    # Bounded: the dev model's strings are random, so an unbounded one may outrun max_tokens.
    city: str = pydantic.Field(max_length=12)
    days: int = pydantic.Field(ge=1, le=7)


@tool(args_schema=WeatherQuery)
def get_weather(city: str, days: int) -> str:
    """The weather in a city for the next days."""
    return f"sunny in {city} for {days} days"


class Forecast(pydantic.BaseModel):
    """A weather forecast."""

    city: str = pydantic.Field(max_length=12)
    days: int = pydantic.Field(ge=1, le=7)


async def test_bind_tools_and_a_tool_message_round_trip(lc_stack: Stack) -> None:
    model = chat_model(lc_stack).bind_tools([get_weather], tool_choice="get_weather")
    question = HumanMessage("What is the weather in Paris?")
    answer = await model.ainvoke([question])
    [call] = answer.tool_calls
    assert call["name"] == "get_weather"
    assert set(call["args"]) == {"city", "days"} and isinstance(call["args"]["days"], int)
    result = ToolMessage(content=json.dumps({"forecast": "sunny"}), tool_call_id=call["id"])
    follow_up = (
        await chat_model(lc_stack, max_tokens=16)
        .bind_tools([get_weather])
        .ainvoke([question, answer, result])
    )
    assert isinstance(follow_up.content, str)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_with_structured_output(lc_stack: Stack, method: str) -> None:
    structured = chat_model(lc_stack).with_structured_output(Forecast, method=method)  # type: ignore[arg-type]
    forecast = await structured.ainvoke("Forecast for Lyon, please.")
    assert isinstance(forecast, Forecast)
    assert 1 <= forecast.days <= 7
