"""``inference.requests``: the one mapping from OpenAI requests to engine requests that the
miner serves and the checker recomputes with (text is covered through the miner's textmap
tests; images here)."""

from __future__ import annotations

import base64

import msgspec
import pytest

from inference import requests as mapping
from inference.base import ImageRequest
from protocol.miner import MinerImageEditRequest
from protocol.openai.images import ImageGenerationRequest


@pytest.fixture
def spec(dev_catalog):
    return dev_catalog.get("sn19-tiny-diffusion").image


def generation(**fields) -> ImageGenerationRequest:
    return msgspec.convert({"prompt": "a cat", **fields}, ImageGenerationRequest)


def test_image_defaults_come_from_the_task(spec) -> None:
    request = mapping.image_request(generation(seed=5), spec)
    assert request == ImageRequest(
        prompt="a cat",
        width=64,
        height=64,
        steps=spec.default_steps,
        seed=5,
        n=1,
        guidance_scale=spec.guidance_scale,
        output_format="png",
    )


def test_image_fields_map(spec) -> None:
    request = mapping.image_request(
        generation(
            seed=1,
            n=3,
            size="64x64",
            steps=7,
            negative_prompt="dogs",
            guidance_scale=3.0,
            output_format="jpeg",
        ),
        spec,
    )
    assert (request.n, request.steps, request.negative_prompt) == (3, 7, "dogs")
    assert (request.guidance_scale, request.output_format) == (3.0, "jpeg")


def test_unseeded_requests_need_a_seed_source(spec) -> None:
    with pytest.raises(mapping.RequestRefused) as raised:
        mapping.image_request(generation(), spec)
    assert raised.value.param == "seed"
    assert mapping.image_request(generation(), spec, random_seed=lambda: 9).seed == 9


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"size": "128x128"}, "size"),
        ({"steps": 51}, "steps"),
        ({"n": 5}, "n"),
        ({"response_format": "url"}, "response_format"),
    ],
)
def test_image_refusals(spec, fields, param) -> None:
    with pytest.raises(mapping.RequestRefused) as raised:
        mapping.image_request(generation(seed=1, **fields), spec)
    assert raised.value.param == param


def test_edits_carry_the_decoded_image_and_mask(spec) -> None:
    body = MinerImageEditRequest(
        prompt="a hat",
        seed=2,
        image=base64.b64encode(b"IMG").decode(),
        mask="data:image/png;base64," + base64.b64encode(b"MASK").decode(),
    )
    request = mapping.image_request(body, spec)
    assert (request.init_image, request.mask_image, request.strength) == (b"IMG", b"MASK", 0.75)
    with pytest.raises(mapping.RequestRefused):
        mapping.image_request(msgspec.structs.replace(body, image="***"), spec)
