"""Forward engines read the upstream's whole answer, however many network reads it takes: a
real-size image and a big embedding batch arrive intact; an answer over the limit is refused
with a clear error."""

from __future__ import annotations

import base64
import io
import random
from collections.abc import AsyncIterator

import msgspec
import pytest
from PIL import Image

import inference.forward as forward
from inference.base import EngineError, ImageRequest
from inference.forward_media import ForwardEmbeddingEngine, ForwardImageEngine
from protocol.catalog import EngineSpec
from tests.support.upstream import JsonUpstream

SIDE = 1024
BATCH = 2048
WIDTH = 384


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: several megabytes at 1024x1024."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def png() -> bytes:
    return noise_png(SIDE)


@pytest.fixture(scope="module")
def vectors() -> list[list[float]]:
    rng = random.Random(11)
    return [[rng.uniform(-1, 1) for _ in range(WIDTH)] for _ in range(BATCH)]


@pytest.fixture(scope="module")
async def upstream(png, vectors) -> AsyncIterator[JsonUpstream]:
    def images(body):
        item = {"b64_json": base64.b64encode(png).decode()}
        return 200, msgspec.json.encode({"created": 0, "data": [item] * int(body["n"])})

    def embeddings(body):
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(vectors[: len(body["input"])])
        ]
        usage = {"prompt_tokens": 3 * len(data), "total_tokens": 3 * len(data)}
        return 200, msgspec.json.encode({"object": "list", "data": data, "usage": usage})

    server = JsonUpstream({"images/generations": images, "embeddings": embeddings})
    await server.start()
    yield server
    await server.close()


def spec(upstream: JsonUpstream) -> EngineSpec:
    return EngineSpec(type="forward", model="m", options={"base_url": upstream.base_url})


async def test_a_real_size_image_arrives_whole(upstream, png):
    assert len(base64.b64encode(png)) > 4 * 1024 * 1024
    engine = ForwardImageEngine(spec(upstream), supports_inpainting=False)
    await engine.start()
    try:
        request = ImageRequest(prompt="noise", width=SIDE, height=SIDE, steps=1, seed=1, n=2)
        assert await engine.generate(request) == [png, png]
    finally:
        await engine.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_big_embedding_batch_arrives_whole(upstream, vectors, monkeypatch, chunked):
    monkeypatch.setattr(upstream, "chunked", chunked)
    engine = ForwardEmbeddingEngine(spec(upstream), dimensions=WIDTH)
    await engine.start()
    try:
        result = await engine.embed([f"sentence {i}" for i in range(BATCH)])
    finally:
        await engine.close()
    assert result.vectors == vectors
    assert result.prompt_tokens == 3 * BATCH


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_answer_over_the_limit_is_refused_clearly(upstream, monkeypatch, chunked):
    monkeypatch.setattr(forward, "MAX_RESPONSE", 1024 * 1024)
    monkeypatch.setattr(upstream, "chunked", chunked)
    engine = ForwardEmbeddingEngine(spec(upstream), dimensions=WIDTH)
    await engine.start()
    try:
        with pytest.raises(EngineError, match="more than the 1048576 bytes"):
            await engine.embed([f"sentence {i}" for i in range(BATCH)])
    finally:
        await engine.close()
