"""Images and embeddings over real HTTP, against the engine interfaces (fake engines)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from miner_server import create_app
from protocol.miner import MinerEmbeddingList, MinerImagesResponse
from protocol.openai.embeddings import decode_base64_floats
from tests.support.fake_engines import FakeEmbeddingEngine, FakeImageEngine
from tests.support.miner import SignedClient, miner_settings, serving

IMAGE = "sn19-tiny-diffusion"
EMBED = "all-minilm-l6-v2"


class Media:
    def __init__(self, client: SignedClient, image: FakeImageEngine, embed: FakeEmbeddingEngine):
        self.client = client
        self.image = image
        self.embed = embed


@pytest.fixture
async def media(wallet_root: Path, validator, miner_hotkey) -> AsyncIterator[Media]:
    image, embed = FakeImageEngine(), FakeEmbeddingEngine(dimensions=384)
    settings = miner_settings(wallet_root, tasks=[IMAGE, EMBED])
    app = create_app(settings, engines={IMAGE: image, EMBED: embed})
    async with serving(app, settings) as url, aiohttp.ClientSession() as session:
        yield Media(SignedClient(session, url, validator.hotkey, miner_hotkey), image, embed)


def png_b64(size: int = 64) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (0, 128, 0)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def test_generation_returns_strict_b64_pngs(media: Media) -> None:
    body = {
        "model": IMAGE,
        "prompt": "a red cat",
        "n": 2,
        "seed": 11,
        "steps": 4,
        "guidance_scale": 3,
    }
    async with media.client.post("/v1/images/generations", body) as response:
        assert response.status == 200, await response.text()
        answer = msgspec.json.decode(await response.read(), type=MinerImagesResponse)
    assert len(answer.data) == 2 and answer.size == "64x64" and answer.output_format == "png"
    assert base64.b64decode(answer.data[0].b64_json).startswith(b"\x89PNG")
    (request,) = media.image.requests
    assert (request.seed, request.steps, request.n, request.guidance_scale) == (11, 4, 2, 3.0)
    assert (request.width, request.height, request.init_image) == (64, 64, None)


async def test_generation_defaults_and_random_seed(media: Media) -> None:
    for _ in range(2):
        async with media.client.post(
            "/v1/images/generations", {"prompt": "x", "size": "auto"}
        ) as response:
            assert response.status == 200
    first, second = media.image.requests
    assert (first.steps, first.guidance_scale, first.n) == (10, 7.5, 1)  # the dev task's defaults
    assert first.seed != second.seed


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"size": "128x128"}, "size"),
        ({"steps": 51}, "steps"),
        ({"n": 5}, "n"),
        ({"response_format": "url"}, "response_format"),
        ({"size": "big"}, "size"),
    ],
)
async def test_generation_limits(media: Media, fields, param) -> None:
    async with media.client.post(
        "/v1/images/generations", {"model": IMAGE, "prompt": "x", **fields}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == param
    assert media.image.requests == []


async def test_engine_input_error_is_400(media: Media) -> None:
    async with media.client.post("/v1/images/generations", {"prompt": "forbidden"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "prompt refused by the engine"


async def test_edit_with_and_without_mask(media: Media) -> None:
    image = png_b64()
    body = {"model": IMAGE, "prompt": "make it blue", "image": image, "strength": 0.5, "seed": 3}
    async with media.client.post("/v1/images/edits", body) as response:
        assert response.status == 200, await response.text()
        msgspec.json.decode(await response.read(), type=MinerImagesResponse)
    async with media.client.post("/v1/images/edits", {**body, "mask": png_b64()}) as response:
        assert response.status == 200
    plain, masked = media.image.requests
    assert plain.init_image == base64.b64decode(image) and plain.mask_image is None
    assert plain.strength == 0.5 and plain.seed == 3
    assert masked.mask_image is not None


async def test_edit_refusals(media: Media) -> None:
    media.image.supports_inpainting = False
    cases = [
        ({"image": png_b64(), "mask": png_b64()}, "mask"),
        ({"image": "not base64!!"}, "image"),
        ({"image": png_b64(), "strength": 0}, "strength"),
        ({}, "image"),
    ]
    for fields, param in cases:
        async with media.client.post("/v1/images/edits", {"prompt": "x", **fields}) as response:
            assert response.status == 400, fields
            assert (await response.json())["error"]["param"] == param, fields


async def test_embeddings_float_and_base64(media: Media) -> None:
    body = {"model": EMBED, "input": ["one", "three"]}
    async with media.client.post("/v1/embeddings", body) as response:
        assert response.status == 200, await response.text()
        answer = msgspec.json.decode(await response.read(), type=MinerEmbeddingList)
    assert [item.index for item in answer.data] == [0, 1]
    assert len(answer.data[0].embedding) == 384
    assert answer.usage.prompt_tokens == 8 and answer.model == EMBED
    async with media.client.post(
        "/v1/embeddings", {**body, "encoding_format": "base64"}
    ) as response:
        encoded = await response.json()
    decoded = decode_base64_floats(encoded["data"][1]["embedding"])
    assert decoded == pytest.approx(answer.data[1].embedding, abs=1e-6)


async def test_embedding_input_shapes(media: Media) -> None:
    for value, expected in [
        ("solo", ["solo"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1], [2, 3]], [[1], [2, 3]]),
    ]:
        async with media.client.post(
            "/v1/embeddings", {"model": EMBED, "input": value, "dimensions": 4}
        ) as response:
            assert response.status == 200
    assert [call for call in media.embed.calls] == [
        (["solo"], 4),
        ([[1, 2, 3]], 4),
        ([[1], [2, 3]], 4),
    ]
    for bad in ([], [1, "a"], [["a"]], [-1], ["x"] * 2049):
        async with media.client.post("/v1/embeddings", {"model": EMBED, "input": bad}) as response:
            assert response.status == 400, bad
            assert (await response.json())["error"]["param"].startswith("input")
