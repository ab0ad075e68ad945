"""Property tests: whatever a client sends to any endpoint, the answer is a 2xx or a 4xx with the
OpenAI error envelope; never a 5xx, never a crash."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from core.miners import InProcessStats
from gateway import create_app
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import (
    AUTH,
    CHAT,
    EMBED,
    IMAGE,
    FakeRedis,
    StaticRoutes,
    all_routes,
    settings_for,
)
from tests.support.miner_streams import (
    chat_chunks,
    completion_chunks,
    embeddings_body,
    images_body,
    stream_body,
)


def honest_miner(url: str, path: str, body: bytes) -> Canned:
    """Answers whatever valid request the gateway forwards, as a correct miner would."""
    request = msgspec.json.decode(body)
    n = request.get("n") or 1
    count = min(3, request.get("max_tokens") or 3)
    if path == "/v1/chat/completions":
        return Canned(
            200, stream_body(chat_chunks(count, n=n, top=request.get("top_logprobs") or 0))
        )
    if path == "/v1/completions":
        return Canned(
            200, stream_body(completion_chunks(count, n=n, top=request.get("logprobs") or 0))
        )
    if path == "/v1/embeddings":
        return Canned(
            200, [embeddings_body(len(request["input"]), request.get("dimensions") or 384)]
        )
    width, height = (int(v) for v in request["size"].split("x"))
    return Canned(200, [images_body(n, width, height)])


@contextlib.contextmanager
def client() -> Iterator[TestClient[Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            settings_for(Path(tmp), max_body_bytes=32_768),
            redis=FakeRedis(),
            routes=StaticRoutes(all_routes()),
            miner_client=FakeMinerClient(honest_miner),
            stats=InProcessStats(cooldown_base_s=0.0, cooldown_max_s=0.0),
        )
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient[Any]]:
    with client() as test_client:
        yield test_client


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

VALID = {
    "/v1/chat/completions": {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/completions": {"model": CHAT, "prompt": "hi"},
    "/v1/embeddings": {"model": EMBED, "input": "hi"},
    "/v1/images/generations": {"model": IMAGE, "prompt": "hi"},
}
FIELDS = {
    "/v1/chat/completions": [
        "model",
        "messages",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "stream",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "tools",
        "response_format",
        "user",
    ],
    "/v1/completions": [
        "model",
        "prompt",
        "n",
        "max_tokens",
        "logprobs",
        "echo",
        "suffix",
        "best_of",
        "stream",
        "stop",
        "seed",
        "temperature",
    ],
    "/v1/embeddings": ["model", "input", "encoding_format", "dimensions", "user"],
    "/v1/images/generations": [
        "model",
        "prompt",
        "n",
        "size",
        "response_format",
        "seed",
        "steps",
        "guidance_scale",
        "negative_prompt",
        "quality",
    ],
}
INTERESTING = st.one_of(
    JSON,
    st.integers(min_value=-3, max_value=5000),
    st.sampled_from(
        [
            "64x64",
            "auto",
            "1024x1024",
            "",
            "base64",
            "float",
            "url",
            "b64_json",
            CHAT,
            EMBED,
            IMAGE,
            "x" * 40_000,
        ]
    ),
    st.lists(
        st.dictionaries(
            st.sampled_from(["role", "content", "name", "type", "text"]),
            st.one_of(
                st.sampled_from(["user", "assistant", "system", "tool", "text", "image_url"]),
                st.text(max_size=10),
                st.integers(),
            ),
        ),
        max_size=3,
    ),
    st.lists(st.integers(min_value=-2, max_value=300), max_size=5),
)


def check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert "x-request-id" in response.headers
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["type"]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(list(VALID)), data=st.data())
def test_mutated_requests(http: TestClient[Any], path: str, data: st.DataObject) -> None:
    body = dict(VALID[path])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        action = data.draw(st.sampled_from(["set", "drop", "unknown"]))
        if action == "set":
            body[data.draw(st.sampled_from(FIELDS[path]))] = data.draw(INTERESTING)
        elif action == "drop" and body:
            body.pop(data.draw(st.sampled_from(sorted(body))))
        else:
            body[data.draw(st.text(min_size=1, max_size=8))] = data.draw(JSON)
    check(http.post(path, content=msgspec.json.encode(body), headers=AUTH))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from([*VALID, "/v1/images/edits", "/v1/models", "/v1/nope"]),
    body=st.one_of(st.binary(max_size=200), JSON.map(msgspec.json.encode)),
)
def test_arbitrary_bodies(http: TestClient[Any], path: str, body: bytes) -> None:
    check(http.post(path, content=body, headers=AUTH))


def test_huge_bodies_are_413(http: TestClient[Any]) -> None:
    huge = {"model": CHAT, "messages": [{"role": "user", "content": "x" * 100_000}]}
    check(response := http.post("/v1/chat/completions", json=huge, headers=AUTH))
    assert response.status_code == 413
    announced = http.post(
        "/v1/embeddings",
        content=b"{}" * 40_000,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert announced.status_code == 413


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "prompt",
                "model",
                "n",
                "size",
                "seed",
                "steps",
                "strength",
                "response_format",
                "bogus",
            ]
        ),
        st.text(max_size=12),
        max_size=6,
    ),
    image=st.one_of(st.binary(max_size=64), st.just(b"")),
)
def test_image_edit_forms(http: TestClient[Any], fields: dict[str, str], image: bytes) -> None:
    response = http.post(
        "/v1/images/edits",
        data=fields,
        files={"image": ("x.png", image, "image/png")},
        headers=AUTH,
    )
    check(response)
