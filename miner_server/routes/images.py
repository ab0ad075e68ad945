"""``POST /v1/images/generations`` and ``POST /v1/images/edits`` (signed).

Generation takes OpenAI's fields plus SN19's ``seed``, ``steps``, ``negative_prompt`` and
``guidance_scale``; edits take JSON with base64 ``image`` (and ``mask`` for inpainting, where the
task and engine support it) and ``strength``. ``size`` must be one of the task's sizes (``auto``
or absent: its default), ``steps`` at most its ``max_steps``, ``n`` at most its ``max_n``; images
come back as ``b64_json`` only. Without a ``seed`` the miner draws one; image ``i`` uses
``seed + i``.
"""

from __future__ import annotations

import base64
import binascii
import random
import time

import msgspec
from litestar import post
from litestar.types import ASGIApp

from inference.base import ImageEngine, ImageRequest
from miner_server.auth import Caller
from miner_server.deps import Miner, SignedRequest, decode
from miner_server.errors import InvalidRequest, Unsupported, engine_errors
from miner_server.render import ENCODER
from miner_server.state import MinerState, Served
from protocol.catalog import ImageSpec, Task, parse_size
from protocol.miner import MinerImage, MinerImageEditRequest, MinerImagesResponse
from protocol.openai.images import ImageGenerationRequest

_GENERATION = msgspec.json.Decoder(ImageGenerationRequest)
_EDIT = msgspec.json.Decoder(MinerImageEditRequest)
MAX_SEED = 2**32 - 1


@post("/v1/images/generations", status_code=200)
async def generate_images(miner: Miner, signed: SignedRequest) -> ASGIApp:
    body = decode(_GENERATION, signed.body)
    served = miner.image_task(body.model)
    return await _run(miner, signed.caller, served, image_request(body, served.task))


@post("/v1/images/edits", status_code=200)
async def edit_images(miner: Miner, signed: SignedRequest) -> ASGIApp:
    body = decode(_EDIT, signed.body)
    served = miner.image_task(body.model)
    spec = _image_spec(served.task)
    if not spec.edits:
        raise InvalidRequest(f"{served.task.id} does not take image edits.", param="model")
    mask = None
    if body.mask is not None:
        if not (spec.inpainting and served.engine.supports_inpainting):
            raise Unsupported("mask", f" for {served.task.id} (no inpainting)")
        mask = _b64_image(body.mask, "mask")
    request = image_request(body, served.task)
    request = msgspec.structs.replace(
        request,
        init_image=_b64_image(body.image, "image"),
        mask_image=mask,
        strength=request.strength if body.strength is None else body.strength,
    )
    return await _run(miner, signed.caller, served, request)


def image_request(body: ImageGenerationRequest | MinerImageEditRequest, task: Task) -> ImageRequest:
    spec = _image_spec(task)
    if body.response_format == "url":
        raise Unsupported("response_format", " (`url`: images come back as `b64_json`)")
    size = spec.default_size if body.size in (None, "auto") else body.size
    if size not in spec.sizes:
        raise InvalidRequest(f"size: one of {', '.join(spec.sizes)}.", param="size")
    steps = spec.default_steps if body.steps is None else body.steps
    if steps > spec.max_steps:
        raise InvalidRequest(f"steps: at most {spec.max_steps}.", param="steps")
    n = body.n or 1
    if n > spec.max_n:
        raise InvalidRequest(f"n: at most {spec.max_n} images per request.", param="n")
    width, height = parse_size(size)
    return ImageRequest(
        prompt=body.prompt,
        width=width,
        height=height,
        steps=steps,
        seed=random.randint(0, MAX_SEED) if body.seed is None else body.seed,
        n=n,
        negative_prompt=body.negative_prompt or "",
        guidance_scale=spec.guidance_scale if body.guidance_scale is None else body.guidance_scale,
        output_format=body.output_format or "png",
    )


async def _run(
    miner: MinerState, caller: Caller, served: Served[ImageEngine], request: ImageRequest
) -> ASGIApp:
    slot = served.limiter.acquire(caller)
    try:
        with engine_errors():
            images = await served.engine.generate(request)
    finally:
        slot.release()
    response = MinerImagesResponse(
        created=int(time.time()),
        data=[MinerImage(b64_json=base64.b64encode(image).decode("ascii")) for image in images],
        output_format=request.output_format,
        size=f"{request.width}x{request.height}",
    )
    return miner.json(caller, ENCODER.encode(response))


def _image_spec(task: Task) -> ImageSpec:
    assert task.image is not None, "image tasks have an image section (checked by the catalog)"
    return task.image


def _b64_image(data: str, param: str) -> bytes:
    payload = data.partition(",")[2] if data.startswith("data:") else data
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{param}: not valid base64.", param=param) from None
    if not decoded:
        raise InvalidRequest(f"{param}: empty image.", param=param)
    return decoded
