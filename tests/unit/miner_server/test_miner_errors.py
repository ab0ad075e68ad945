"""Every error leaves as the OpenAI envelope with the right status, code and param."""

from __future__ import annotations

import msgspec
import pytest

from miner_server.errors import ConcurrencyLimit, from_validation_error
from miner_server.state import Limiter
from protocol.miner import MinerChatRequest
from tests.unit.miner_server.conftest import CHAT_TASK

CHAT = "/v1/chat/completions"


def chat(**fields) -> dict:
    return {"model": CHAT_TASK, "messages": [{"role": "user", "content": "hi"}], **fields}


def envelope(response) -> dict:
    payload = response.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    return payload["error"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(temperature=2.5), "temperature"),
        (chat(top_p=-0.1), "top_p"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(n=0), "n"),
        (chat(top_logprobs=21), "top_logprobs"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(seed="x"), "seed"),
        (chat(stream="yes"), "stream"),
        (chat(frobnicate=True), "frobnicate"),
        (chat(messages=[]), "messages"),
        (chat(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
        (chat(messages=[{"content": "x"}]), "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat(tools=[{"type": "function"}]), "tools[0].function"),
        (chat(logit_bias={"1": 5}), "logit_bias"),
        (chat(frequency_penalty=1.0), "frequency_penalty"),
        (chat(response_format={"type": "xml"}), "response_format.type"),
        (chat(max_tokens=100_000), "max_tokens"),
    ],
)
async def test_bad_chat_fields_are_400_with_param(make_client, body, param) -> None:
    async with make_client() as client:
        response = await client.post(CHAT, body)
    assert response.status_code == 400, response.text
    error = envelope(response)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


async def test_malformed_json_is_400_without_param(make_client) -> None:
    async with make_client() as client:
        response = await client.post(CHAT, b"{not json")
    assert response.status_code == 400
    error = envelope(response)
    assert error["param"] is None and error["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"model": CHAT_TASK, "prompt": "x", "echo": True}, "echo"),
        ("/v1/completions", {"model": CHAT_TASK, "prompt": "x", "logprobs": 6}, "logprobs"),
        ("/v1/completions", {"model": CHAT_TASK}, "prompt"),
        ("/v1/capacity", {"tasks": "all"}, "tasks"),
    ],
)
async def test_other_bad_bodies(make_client, path, body, param) -> None:
    async with make_client() as client:
        response = await client.post(path, body)
    assert response.status_code == 400
    assert envelope(response)["param"] == param


async def test_unknown_model_is_404(make_client) -> None:
    async with make_client() as client:
        for path, body in [
            (CHAT, chat(model="gpt-4o")),
            ("/v1/completions", {"model": "nope", "prompt": "x"}),
            ("/v1/embeddings", {"model": CHAT_TASK, "input": "x"}),
            ("/v1/images/generations", {"model": CHAT_TASK, "prompt": "x"}),
        ]:
            response = await client.post(path, body)
            assert response.status_code == 404, path
            assert envelope(response)["code"] == "model_not_found"
            assert envelope(response)["param"] == "model"


async def test_body_over_the_limit_is_413(make_client) -> None:
    async with make_client(max_body_bytes=2048) as client:
        response = await client.post(CHAT, chat(messages=[{"role": "user", "content": "x" * 4000}]))
        assert response.status_code == 413
        assert envelope(response)["code"] == "request_too_large"
        assert (await client.post(CHAT, chat(max_tokens=1))).status_code == 200


def test_concurrency_limit_is_429_with_retry_after() -> None:
    # Over real HTTP in tests/integration/miner_server (the in-process client serialises requests).
    limiter = Limiter("t", 2)
    first, second = limiter.acquire(), limiter.acquire()
    with pytest.raises(ConcurrencyLimit) as raised:
        limiter.acquire()
    error = raised.value
    assert error.status_code == 429 and error.headers == {"retry-after": "1"}
    assert msgspec.json.decode(error.body())["error"]["code"] == "concurrency_limit"
    first.release()
    first.release()  # idempotent
    assert limiter.in_flight == 1
    limiter.acquire()
    second.release()
    assert limiter.in_flight == 1


async def test_unknown_route_and_method(make_client) -> None:
    async with make_client() as client:
        response = await client.client.get("/v1/nothing")
        assert response.status_code == 404 and envelope(response)["code"] == "not_found"
        response = await client.client.get(CHAT)
        assert response.status_code == 405 and envelope(response)["code"] == "method_not_allowed"


def test_validation_error_paths() -> None:
    def param(body: bytes) -> str | None:
        try:
            msgspec.json.decode(body, type=MinerChatRequest)
        except msgspec.ValidationError as exc:
            return from_validation_error(exc).param
        raise AssertionError("decoded")

    assert (
        param(b'{"model":"m","messages":[{"role":"user","content":"x","zz":1}]}')
        == "messages[0].zz"
    )
    assert param(b'{"model":"m"}') == "messages"
    assert param(b'{"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}') == (
        "messages[0].content[0].type"
    )
