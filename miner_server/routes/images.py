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
import time

import msgspec
from litestar import post
from litestar.types import ASGIApp

from inference import requests as mapping
from inference.base import ImageEngine, ImageRequest
from miner_server.auth import Caller
from miner_server.deps import Miner, SignedRequest, decode
from miner_server.errors import InvalidRequest, Unsupported, engine_errors
from miner_server.render import ENCODER
from miner_server.state import MinerState, Served
from miner_server.textmap import refusals
from protocol.catalog import ImageSpec, Task
from protocol.miner import MinerImage, MinerImageEditRequest, MinerImagesResponse
from protocol.openai.images import ImageGenerationRequest

_GENERATION = msgspec.json.Decoder(ImageGenerationRequest)
_EDIT = msgspec.json.Decoder(MinerImageEditRequest)


@post("/v1/images/generations", status_code=200)
async def generate_images(miner: Miner, signed: SignedRequest) -> ASGIApp:
    body = decode(_GENERATION, signed.body)
    served = miner.image_task(body.model)
    return await _run(miner, signed.caller, served, _engine_request(body, served.task))


@post("/v1/images/edits", status_code=200)
async def edit_images(miner: Miner, signed: SignedRequest) -> ASGIApp:
    body = decode(_EDIT, signed.body)
    served = miner.image_task(body.model)
    spec = _image_spec(served.task)
    if not spec.edits:
        raise InvalidRequest(f"{served.task.id} does not take image edits.", param="model")
    if body.mask is not None and not (spec.inpainting and served.engine.supports_inpainting):
        raise Unsupported("mask", f" for {served.task.id} (no inpainting)")
    return await _run(miner, signed.caller, served, _engine_request(body, served.task))


def _engine_request(
    body: ImageGenerationRequest | MinerImageEditRequest, task: Task
) -> ImageRequest:
    """The shared mapping (``inference.requests``: the checker rebuilds the same request)."""
    with refusals():
        return mapping.image_request(body, _image_spec(task), random_seed=mapping.miner_random_seed)


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
