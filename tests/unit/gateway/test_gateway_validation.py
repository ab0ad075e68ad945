"""Request validation: 400 with the OpenAI envelope and ``param``, never 422."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protocol.validation import param_from_error
from tests.support.gateway import CHAT, EMBED, IMAGE, gateway
from tests.unit.gateway.conftest import ok_chat

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            "Expected `str | array | null`, got `int` - at `$.messages[0].content`",
            "messages[0].content",
        ),
        ("Object missing required field `messages`", "messages"),
        ("Object contains unknown field `foo`", "foo"),
        ("Object contains unknown field `extra` - at `$.messages[0]`", "messages[0].extra"),
        (
            "Object missing required field `text` - at `$.messages[0].content[0]`",
            "messages[0].content[0].text",
        ),
        ("Expected `float` <= 2.0 - at `$.temperature`", "temperature"),
        ("Expected `float`, got `str` - at `$.logit_bias[...]`", "logit_bias"),
        ("Expected `object`, got `array`", None),
    ],
)
def test_param_from_msgspec_errors(message: str, param: str | None) -> None:
    assert param_from_error(message) == param


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": CHAT, "messages": MESSAGES, **fields}


CHAT_400: list[tuple[Any, str | None]] = [
    (chat(temperature=3), "temperature"),
    (chat(top_p=1.5), "top_p"),
    (chat(foo=1), "foo"),
    ({"model": CHAT, "messages": []}, "messages"),
    ({"model": CHAT}, "messages"),
    ({"messages": MESSAGES}, "model"),
    (chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (chat(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
    (chat(messages=[{"role": "user"}]), "messages[0].content"),
    (chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
    (
        chat(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://x"}}],
                }
            ]
        ),
        "messages[0].content[0]",
    ),
    (chat(tools=[{"type": "custom", "custom": {"name": "f"}}]), "tools[0].type"),
    (chat(tool_choice="auto"), "tool_choice"),
    (chat(functions=[{"name": "f"}]), "functions"),
    (chat(response_format={"type": "json_schema"}), "response_format.json_schema"),
    (chat(frequency_penalty=0.5), "frequency_penalty"),
    (chat(presence_penalty=-1), "presence_penalty"),
    (chat(logit_bias={"1": 2.0}), "logit_bias"),
    (chat(top_logprobs=2), "top_logprobs"),
    (chat(n=5), "n"),
    (chat(n=0), "n"),
    (chat(max_tokens=5000), "max_tokens"),
    (chat(max_completion_tokens=1025), "max_completion_tokens"),
    (chat(max_tokens=0), "max_tokens"),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    (chat(stream_options={"include_usage": True}), "stream_options"),
    (chat(modalities=["audio"]), "modalities"),
    (chat(messages=[{"role": "user", "content": "x" * 2100}], max_tokens=100), "max_tokens"),
]


@pytest.mark.parametrize(("payload", "param"), CHAT_400)
async def test_chat_400_names_the_param(tmp: Path, payload: Any, param: str | None) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post("/v1/chat/completions", payload)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-request-id"]
    assert not gw.miners.calls  # nothing reached a miner


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"model": "sn19-tiny-chat", "messages": [}',
        b"\xff\xfe",
        b'{"model":"sn19-tiny-chat","messages":[{"role":"user","content":"\xff"}]}',
    ],
)
async def test_malformed_json_is_400(tmp: Path, body: bytes) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post("/v1/chat/completions", body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_model_is_404(tmp: Path) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post("/v1/chat/completions", chat(model="gpt-17"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [
        ("/v1/chat/completions", chat(model=IMAGE), "model"),
        ("/v1/embeddings", {"model": CHAT, "input": "x"}, "model"),
        ("/v1/images/generations", {"model": EMBED, "prompt": "x"}, "model"),
    ],
)
async def test_wrong_kind_of_model_is_400(tmp: Path, path: str, payload: Any, param: str) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post(path, payload)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def completion(**fields: Any) -> dict[str, Any]:
    return {"model": CHAT, "prompt": "hello", **fields}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (completion(prompt=["a", "b"]), "prompt"),
        (completion(prompt=[[1, 2], [3]]), "prompt"),
        (completion(prompt=[]), "prompt"),
        (completion(prompt=[1, "x"]), "prompt"),
        (completion(prompt=[-1]), "prompt"),
        (completion(echo=True), "echo"),
        (completion(suffix="x"), "suffix"),
        (completion(best_of=3), "best_of"),
        (completion(logprobs=6), "logprobs"),
        (completion(logprobs=True), None),
        (completion(n=9), "n"),
        (completion(max_tokens=4096), "max_tokens"),
        (completion(logit_bias={"5": 1}), "logit_bias"),
        (completion(stream_options={"include_usage": True}), "stream_options"),
    ],
)
async def test_completions_400(tmp: Path, payload: Any, param: str | None) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post("/v1/completions", payload)
    assert response.status_code == 400, response.text
    if param is not None:
        assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": EMBED, "input": ""}, "input[0]"),
        ({"model": EMBED, "input": []}, "input"),
        ({"model": EMBED, "input": ["a", 1]}, "input[1]"),
        ({"model": EMBED, "input": ["x"] * 2049}, "input"),
        ({"model": EMBED, "input": "word " * 400}, "input[0]"),
        ({"model": EMBED, "input": "x", "dimensions": 385}, "dimensions"),
        ({"model": EMBED, "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": EMBED, "input": [[1, 2], []]}, "input[1]"),
    ],
)
async def test_embeddings_400(tmp: Path, payload: Any, param: str) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post("/v1/embeddings", payload)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": IMAGE, "prompt": "x", "size": "1024x1024"}, "size"),
        ({"model": IMAGE, "prompt": "x", "size": "big"}, "size"),
        ({"model": IMAGE, "prompt": "x", "n": 5}, "n"),
        ({"model": IMAGE, "prompt": "x", "n": 11}, "n"),
        ({"model": IMAGE, "prompt": "x", "steps": 51}, "steps"),
        ({"model": IMAGE, "prompt": ""}, "prompt"),
        ({"model": IMAGE, "prompt": "x", "seed": -1}, "seed"),
        ({"model": IMAGE}, "prompt"),
    ],
)
async def test_images_400(tmp: Path, payload: Any, param: str) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.post("/v1/images/generations", payload)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


LONG = ["a cat"] * 2049
EVERY_400 = [
    ("/v1/chat/completions", chat(n=99), "n", "invalid_value"),
    ("/v1/chat/completions", chat(top_logprobs=2), "top_logprobs", "invalid_value"),
    (
        "/v1/chat/completions",
        chat(stream_options={"include_usage": True}),
        "stream_options",
        "invalid_value",
    ),
    ("/v1/completions", {"model": CHAT, "prompt": "x", "n": 99}, "n", "invalid_value"),
    ("/v1/chat/completions", chat(max_tokens=10_000_000), "max_tokens", None),
    ("/v1/embeddings", {"model": EMBED, "input": "a", "dimensions": 9999}, "dimensions", None),
    ("/v1/embeddings", {"model": EMBED, "input": LONG}, "input", "too_many_inputs"),
    ("/v1/images/generations", {"model": IMAGE, "prompt": "x", "size": "7x7"}, "size", None),
    ("/v1/images/generations", {"prompt": "x"}, "model", None),
]


@pytest.mark.parametrize(("path", "body", "param", "code"), EVERY_400)
async def test_every_400_has_a_code(
    tmp_path: Path, path: str, body: dict[str, Any], param: str, code: str | None
) -> None:
    """Once eight kinds of 400 had ``code: null``; every error envelope names its code."""
    async with gateway(tmp_path, ok_chat()) as harness:
        response = await harness.post(path, body)
    error = response.json()["error"]
    assert response.status_code == 400, error
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert isinstance(error["code"], str) and error["code"]
    if code is not None:
        assert error["code"] == code
