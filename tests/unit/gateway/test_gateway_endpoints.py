"""Each endpoint's success path over in-memory miners, and what the miner was asked."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from gateway import create_app
from gateway.auth import Caller
from protocol.catalog import Catalog, resolve_catalog
from protocol.openai.embeddings import decode_base64_floats
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import (
    CHAT,
    EMBED,
    IMAGE,
    FakeRedis,
    StaticRoutes,
    all_routes,
    gateway,
    settings_for,
)
from tests.support.miner_streams import (
    chat_chunks,
    completion_chunks,
    embeddings_body,
    images_body,
    png,
    stream_body,
)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "héllo"}]


def by_path() -> object:
    chat = stream_body(chat_chunks(5, top=3))
    completion = stream_body(completion_chunks(4, top=3))

    def answer(url: str, path: str, body: bytes) -> Canned:
        request = msgspec.json.decode(body)
        if path == "/v1/chat/completions":
            return Canned(200, chat)
        if path == "/v1/completions":
            return Canned(200, completion)
        if path == "/v1/embeddings":
            inputs = request["input"]
            return Canned(200, [embeddings_body(len(inputs), request.get("dimensions") or 384)])
        return Canned(200, [images_body(request.get("n", 1), 64, 64)])

    return answer


async def test_chat_non_stream(tmp: Path) -> None:
    async with gateway(tmp, by_path()) as gw:
        response = await gw.post("/v1/chat/completions", {"model": CHAT, "messages": MESSAGES})
        sent = gw.miners.calls[0][2]
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == CHAT
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello there, how are",
        "refusal": None,
    }
    assert body["choices"][0]["logprobs"] is None
    # Prompt tokens are the gateway's own count (Llama-3 template, one token per byte).
    expected = 1 + 13 + (5 + 6 + 9) + (5 + 4 + len("héllo".encode()))
    assert body["usage"] == {
        "prompt_tokens": expected,
        "completion_tokens": 5,
        "total_tokens": expected + 5,
    }
    assert response.headers["x-sn19-attempts"] == "1"
    assert float(response.headers["x-sn19-overhead-ms"]) >= 0
    # The miner is always asked to stream, with logprobs, usage and a seed.
    assert sent["stream"] is True and sent["logprobs"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert isinstance(sent["seed"], int)
    assert sent["max_tokens"] == 1024
    assert "top_logprobs" not in sent


async def test_chat_developer_role_and_text_parts(tmp: Path) -> None:
    messages = [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    async with gateway(tmp, by_path()) as gw:
        response = await gw.post(
            "/v1/chat/completions",
            {
                "model": CHAT,
                "messages": messages,
                "seed": 7,
                "max_completion_tokens": 9,
                "max_tokens": 12,
                "logprobs": True,
                "top_logprobs": 2,
            },
        )
        sent = gw.miners.calls[0][2]
    assert response.status_code == 200
    assert sent["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "a\nb"},
    ]
    assert sent["seed"] == 7 and sent["max_tokens"] == 9 and sent["top_logprobs"] == 2
    entries = response.json()["choices"][0]["logprobs"]["content"]
    assert len(entries) == 5 and all(len(e["top_logprobs"]) == 2 for e in entries)


async def test_completions_stream_and_json(tmp: Path) -> None:
    async with gateway(tmp, by_path()) as gw:
        response = await gw.post("/v1/completions", {"model": CHAT, "prompt": "hi", "logprobs": 2})
        streamed = await gw.post(
            "/v1/completions", {"model": CHAT, "prompt": [1, 2, 3], "stream": True}
        )
        sent = gw.miners.calls[0][2]
    body = response.json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert body["choices"][0]["text"] == "Hello there, how"
    assert all(len(top) == 2 for top in body["choices"][0]["logprobs"]["top_logprobs"])
    assert body["usage"]["prompt_tokens"] == 3  # BOS + 2 bytes
    assert sent["max_tokens"] == 16 and sent["logprobs"] == 2
    assert streamed.text.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize("encoding", ["float", "base64", None])
async def test_embeddings(tmp: Path, encoding: str | None) -> None:
    payload = {"model": EMBED, "input": ["a cat", "a dog"], "dimensions": 16}
    if encoding:
        payload["encoding_format"] = encoding
    async with gateway(tmp, by_path()) as gw:
        response = await gw.post("/v1/embeddings", payload)
        sent = gw.miners.calls[0][2]
    assert response.status_code == 200, response.text
    body = response.json()
    assert sent["encoding_format"] == "float" and sent["dimensions"] == 16
    assert body["model"] == EMBED and body["object"] == "list"
    vectors = [item["embedding"] for item in body["data"]]
    if encoding == "base64":
        vectors = [decode_base64_floats(v) for v in vectors]
    assert [len(v) for v in vectors] == [16, 16]
    assert vectors[1][0] == pytest.approx(0.6)
    # [CLS] a cat [SEP] = 4 tokens each with the model's real tokenizer.
    assert body["usage"] == {"prompt_tokens": 8, "total_tokens": 8}


async def test_embeddings_wrong_vector_count_fails_over(tmp: Path) -> None:
    answers = iter([Canned(200, [embeddings_body(1, 384)]), Canned(200, [embeddings_body(2, 384)])])
    async with gateway(tmp, lambda *a: next(answers)) as gw:
        response = await gw.post("/v1/embeddings", {"model": EMBED, "input": ["a", "b"]})
    assert response.status_code == 200
    assert response.headers["x-sn19-attempts"] == "2"


async def test_image_generation(tmp: Path) -> None:
    async with gateway(tmp, by_path()) as gw:
        response = await gw.post(
            "/v1/images/generations",
            {
                "model": IMAGE,
                "prompt": "a red cat",
                "n": 2,
                "size": "auto",
                "seed": 11,
                "steps": 4,
                "negative_prompt": "blue",
                "guidance_scale": 5.0,
            },
        )
        sent = gw.miners.calls[0][2]
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == 2 and body["size"] == "64x64"
    image = Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert image.size == (64, 64) and image.format == "PNG"
    assert sent["response_format"] == "b64_json" and sent["seed"] == 11 and sent["steps"] == 4


async def test_image_of_the_wrong_size_fails_over(tmp: Path) -> None:
    answers = iter(
        [
            Canned(200, [images_body(1, 32, 32)]),
            Canned(200, [b"{}"]),
            Canned(200, [images_body(1, 64, 64)]),
        ]
    )
    async with gateway(tmp, lambda *a: next(answers)) as gw:
        response = await gw.post("/v1/images/generations", {"model": IMAGE, "prompt": "x"})
    assert response.status_code == 200
    assert response.headers["x-sn19-attempts"] == "3"


async def test_image_edit_multipart(tmp: Path) -> None:
    files = {
        "image": ("cat.png", png(64, 64), "image/png"),
        "mask": ("mask.png", png(64, 64, 255), "image/png"),
    }
    data = {"model": IMAGE, "prompt": "add a hat", "n": "1", "strength": "0.6"}
    async with gateway(tmp, by_path()) as gw:
        response = await gw.client.post(
            "/v1/images/edits",
            files=files,
            data=data,
            headers={"Authorization": "Bearer sk-test-0123456789abcdef"},
        )
        sent = gw.miners.calls[0][2]
    assert response.status_code == 200, response.text
    assert base64.b64decode(sent["image"]) == png(64, 64)
    assert sent["mask"] and sent["strength"] == 0.6 and sent["n"] == 1


@pytest.mark.parametrize(
    ("files", "data", "status", "param"),
    [
        ({"image": ("a.png", b"not an image", "image/png")}, {"prompt": "x"}, 400, "image"),
        ({}, {"prompt": "x"}, 400, "image"),
        (
            {
                "image": ("a.png", png(64, 64), "image/png"),
                "mask": ("m.png", png(32, 32), "image/png"),
            },
            {"prompt": "x"},
            400,
            "mask",
        ),
        ({"image": ("a.png", png(64, 64), "image/png")}, {"prompt": "x", "n": "many"}, 400, "n"),
        ({"image": ("a.png", png(64, 64), "image/png")}, {"prompt": "x", "foo": "1"}, 400, "foo"),
    ],
)
async def test_image_edit_validation(tmp: Path, files, data, status: int, param: str) -> None:
    async with gateway(tmp, by_path()) as gw:
        response = await gw.client.post(
            "/v1/images/edits",
            files=files or None,
            data={"model": IMAGE, **data},
            headers={"Authorization": "Bearer sk-test-0123456789abcdef"},
        )
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


async def test_image_edit_upload_too_large_is_413(tmp: Path) -> None:
    big = png(64, 64) + b"\0" * 300_000
    async with gateway(tmp, by_path(), max_upload_bytes=200_000) as gw:
        response = await gw.client.post(
            "/v1/images/edits",
            files={"image": ("a.png", big, "image/png")},
            data={"model": IMAGE, "prompt": "x"},
            headers={"Authorization": "Bearer sk-test-0123456789abcdef"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_models_list_and_retrieve(tmp: Path) -> None:
    async with gateway(tmp, by_path()) as gw:
        listed = await gw.client.get("/v1/models", headers={"api-key": "sk-test-0123456789abcdef"})
        one = await gw.client.get(
            f"/v1/models/{CHAT}", headers={"x-api-key": "sk-test-0123456789abcdef"}
        )
        missing = await gw.client.get(
            "/v1/models/nope", headers={"x-api-key": "sk-test-0123456789abcdef"}
        )
    models = {m["id"]: m for m in listed.json()["data"]}
    assert set(models) == {CHAT, IMAGE, EMBED}
    assert models[CHAT]["object"] == "model" and models[CHAT]["context_length"] == 2048
    assert models[CHAT]["pricing"]["output_per_million_tokens"] == 0.2
    assert models[IMAGE]["kind"] == "image"
    assert one.json()["id"] == CHAT
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def image_catalog(**image: object) -> Catalog:
    catalog = resolve_catalog("dev")
    tasks = tuple(
        msgspec.structs.replace(task, image=msgspec.structs.replace(task.image, **image))
        if task.id == IMAGE
        else task
        for task in catalog.tasks
    )
    return Catalog(name="dev", tasks=tasks)


@pytest.mark.parametrize(
    ("image", "with_mask", "param"),
    [({"inpainting": False}, True, "mask"), ({"edits": False}, False, "model")],
)
async def test_edit_capabilities_come_from_the_catalog(
    tmp: Path, image: dict[str, bool], with_mask: bool, param: str
) -> None:
    files = {"image": ("a.png", png(64, 64), "image/png")}
    if with_mask:
        files["mask"] = ("m.png", png(64, 64, 255), "image/png")
    async with gateway(tmp, by_path(), catalog=image_catalog(**image)) as gw:
        response = await gw.client.post(
            "/v1/images/edits",
            files=files,
            data={"model": IMAGE, "prompt": "x"},
            headers={"Authorization": "Bearer sk-test-0123456789abcdef"},
        )
        assert not gw.miners.calls
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_model_outside_the_keys_allowlist_is_403(tmp: Path) -> None:
    class Restricted:
        async def authenticate(self, headers: object) -> Caller:
            return Caller(key_id="k", allowed_models=frozenset({EMBED}))

    miners = FakeMinerClient(by_path())
    app = create_app(
        settings_for(tmp),
        redis=FakeRedis(),
        routes=StaticRoutes(all_routes()),
        miner_client=miners,
        authenticator=Restricted(),
    )
    async with AsyncTestClient(app) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": CHAT, "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 403
    # The same refusal as a billing key's allowlist gives (``billing.ModelNotAllowed``).
    assert response.json()["error"]["code"] == "model_not_allowed"
    assert response.json()["error"]["param"] == "model"
    assert not miners.calls
