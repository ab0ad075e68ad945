"""OpenAI text requests → inference TextRequest, and the refusals, without a server."""

from __future__ import annotations

import msgspec
import pytest

from inference.base import ChatTurn, TextRequest
from miner_server.errors import InvalidRequest
from miner_server.textmap import chat_call, completion_call
from miner_server.wire import CompletionBody
from protocol.miner import MinerChatRequest

TASK = "sn19-tiny-chat"


def chat(**fields) -> MinerChatRequest:
    body = {"model": TASK, "messages": [{"role": "user", "content": "hi"}], **fields}
    return msgspec.json.decode(msgspec.json.encode(body), type=MinerChatRequest)


def completion(**fields) -> CompletionBody:
    body = {"model": TASK, "prompt": "hi", **fields}
    return msgspec.json.decode(msgspec.json.encode(body), type=CompletionBody)


def count(prompt_tokens: int):
    return lambda request: prompt_tokens


@pytest.fixture
def task(dev_catalog):
    return dev_catalog.get(TASK)


def test_chat_defaults(task) -> None:
    call = chat_call(chat(), task, count(10))
    assert call.request == TextRequest(
        max_tokens=task.text.max_output_tokens,
        messages=(ChatTurn(role="user", content="hi"),),
        temperature=1.0,
        top_p=1.0,
        n=1,
        seed=None,
        stop=(),
        top_logprobs=0,
    )
    assert not call.stream and not call.include_usage and not call.tokens_as_ids


def test_chat_default_max_tokens_is_capped_by_the_context(task) -> None:
    room = task.text.context_length - 2000
    assert chat_call(chat(), task, count(2000)).request.max_tokens == room
    with pytest.raises(InvalidRequest) as raised:
        chat_call(chat(), task, count(task.text.context_length))
    assert raised.value.code == "context_length_exceeded"


def test_chat_fields_map(task) -> None:
    body = chat(
        messages=[
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": None},
        ],
        max_tokens=50,
        max_completion_tokens=20,
        temperature=0.5,
        top_p=0.9,
        n=2,
        seed=42,
        stop="END",
        top_logprobs=3,
        logprobs=True,
        stream=True,
        stream_options={"include_usage": True},
        return_tokens_as_token_ids=True,
        frequency_penalty=0,
        response_format={"type": "text"},
        tool_choice="none",
        user="u1",
    )
    call = chat_call(body, task, count(1))
    assert call.request.messages == (
        ChatTurn("system", "be brief"),
        ChatTurn("user", "a\nb"),
        ChatTurn("assistant", ""),
    )
    assert call.request.max_tokens == 20
    assert (call.request.temperature, call.request.top_p, call.request.n) == (0.5, 0.9, 2)
    assert call.request.seed == 42 and call.request.stop == ("END",)
    assert call.request.top_logprobs == 3 and call.top_logprobs == 3
    assert call.stream and call.include_usage and call.tokens_as_ids


def test_include_usage_needs_stream(task) -> None:
    assert not chat_call(chat(stream_options={"include_usage": True}), task, count(1)).include_usage


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools"),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": -1}, "presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"n": 5}, "n"),
        ({"max_tokens": 5000}, "max_tokens"),
        ({"max_completion_tokens": 5000}, "max_completion_tokens"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                        ],
                    }
                ]
            },
            "messages[0].content[1]",
        ),
        ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": "x",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].tool_calls",
        ),
    ],
)
def test_chat_refusals_name_the_param(task, fields, param) -> None:
    with pytest.raises(InvalidRequest) as raised:
        chat_call(chat(**fields), task, count(1))
    assert raised.value.param == param
    assert raised.value.status_code == 400


def test_completion_defaults_and_prompt_shapes(task) -> None:
    call = completion_call(completion(), task, count(1))
    assert call.request.prompt == "hi" and call.request.prompt_ids is None
    assert call.request.max_tokens == 16
    assert completion_call(completion(prompt=["one"]), task, count(1)).request.prompt == "one"
    assert completion_call(completion(prompt=[1, 2]), task, count(1)).request.prompt_ids == (1, 2)
    assert completion_call(completion(prompt=[[3, 4]]), task, count(1)).request.prompt_ids == (3, 4)
    call = completion_call(completion(logprobs=5, best_of=2, n=2, max_tokens=7), task, count(1))
    assert call.top_logprobs == 5 and call.request.n == 2 and call.request.max_tokens == 7


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"echo": True}, "echo"),
        ({"suffix": "end"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [[1], [2]]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [1, "a"]}, "prompt"),
        ({"prompt": [-1]}, "prompt"),
        ({"prompt": [[]]}, "prompt"),
        ({"presence_penalty": 1}, "presence_penalty"),
        ({"logit_bias": {"1": 1}}, "logit_bias"),
        ({"max_tokens": 100000}, "max_tokens"),
    ],
)
def test_completion_refusals_name_the_param(task, fields, param) -> None:
    with pytest.raises(InvalidRequest) as raised:
        completion_call(completion(**fields), task, count(1))
    assert raised.value.param == param
