"""Image generation and edits: validate against the task, ask a miner, check its images.

``response_format`` defaults to ``b64_json``; ``url`` is refused (no object storage). ``size``
must be one of the task's sizes (``auto``: the default), ``n`` at most its ``max_n``, ``steps``
at most its ``max_steps``. A request without ``seed`` gets one (kept for the checker). Every
image a miner returns is decoded with Pillow and checked against the asked size before the
client sees it; a miner returning garbage fails over to the next.
"""

from __future__ import annotations

import asyncio
import random
import time

import msgspec

from core.errors import InvalidRequest
from gateway.accounting import CostEstimate, DeliveredUsage
from gateway.chat.service import SEED_RANGE
from gateway.context import RequestContext
from gateway.http import JSONResponse, json_response
from gateway.images.decode import check_miner_images
from gateway.pipeline import dispatch_state, finish_json, release, settle
from gateway.relay import ENCODER
from gateway.validation import unsupported
from protocol.catalog import ImageSpec, Task, parse_size
from protocol.miner import MAX_IMAGE_B64, MinerImageEditRequest, MinerImagesResponse
from protocol.openai.images import (
    ImageData,
    ImageEditFields,
    ImageGenerationRequest,
    ImagesResponse,
)

GENERATION_REQUEST = msgspec.json.Decoder(ImageGenerationRequest)
RESPONSE = msgspec.json.Decoder(MinerImagesResponse)
GENERATIONS_PATH = "/v1/images/generations"
MAX_IMAGE_SEED = 2**32 - 1
EDITS_PATH = "/v1/images/edits"


class ImagePlan(msgspec.Struct, frozen=True):
    size: str
    width: int
    height: int
    n: int
    steps: int
    seed: int


def plan_image(spec: ImageSpec, request: ImageGenerationRequest | ImageEditFields) -> ImagePlan:
    if request.response_format == "url":
        raise unsupported(
            "response_format", "response_format 'url' is not supported; use 'b64_json'."
        )
    size = request.size or "auto"
    if size == "auto":
        size = spec.default_size
    if size not in spec.sizes:
        raise InvalidRequest(
            f"size must be one of {', '.join(spec.sizes)} for this model.", param="size"
        )
    n = request.n or 1
    if n > spec.max_n:
        raise InvalidRequest(f"n must be at most {spec.max_n} for this model.", param="n")
    steps = request.steps or spec.default_steps
    if steps > spec.max_steps:
        raise InvalidRequest(
            f"steps must be at most {spec.max_steps} for this model.", param="steps"
        )
    width, height = parse_size(size)
    seed = request.seed if request.seed is not None else random.randrange(SEED_RANGE)
    if not 0 <= seed <= MAX_IMAGE_SEED - (n - 1):
        # Image i is generated with seed + i, as a 32-bit generator seed.
        raise InvalidRequest(
            f"seed must be between 0 and {MAX_IMAGE_SEED - (n - 1)} for n={n}.", param="seed"
        )
    return ImagePlan(size=size, width=width, height=height, n=n, steps=steps, seed=seed)


def miner_generation(
    task: Task, request: ImageGenerationRequest, plan: ImagePlan
) -> ImageGenerationRequest:
    return msgspec.structs.replace(
        request,
        model=task.id,
        n=plan.n,
        size=plan.size,
        response_format="b64_json",
        steps=plan.steps,
        seed=plan.seed,
        quality=None,
        style=None,
        background=None,
        moderation=None,
        user=None,
        output_compression=None,
    )


def miner_edit(
    task: Task, fields: ImageEditFields, plan: ImagePlan, image: str, mask: str | None
) -> MinerImageEditRequest:
    return MinerImageEditRequest(
        prompt=fields.prompt,
        model=task.id,
        n=plan.n,
        size=plan.size,
        response_format="b64_json",
        output_format=fields.output_format,
        seed=plan.seed,
        steps=plan.steps,
        negative_prompt=fields.negative_prompt,
        guidance_scale=fields.guidance_scale,
        strength=fields.strength,
        image=image,
        mask=mask,
    )


async def serve_images(
    ctx: RequestContext,
    task: Task,
    plan: ImagePlan,
    path: str,
    miner_request: msgspec.Struct,
    *,
    kind: str,
) -> JSONResponse:
    gw = ctx.gateway
    assert ctx.caller is not None
    estimate = CostEstimate(images=plan.n, steps=plan.n * plan.steps)
    hold = await gw.accounting.admit(ctx.caller, task, estimate, request_id=ctx.request_id)
    state = await dispatch_state(ctx, task)

    async def check(result: MinerImagesResponse) -> None:
        encoded = [item.b64_json for item in result.data]
        await asyncio.to_thread(
            check_miner_images, encoded, count=plan.n, width=plan.width, height=plan.height
        )

    try:
        delivered = await gw.dispatcher.call(
            state,
            path,
            ENCODER.encode(miner_request),
            decode=RESPONSE.decode,
            check=check,
            units=lambda _: float(plan.n * plan.steps),
            max_bytes=plan.n * (MAX_IMAGE_B64 + 4096) + 65_536,
        )
    except Exception as exc:
        gw.metrics.attempts_made(task.id, state.attempts)
        await release(ctx, hold, exc)
        raise
    result = delivered.value
    body = ENCODER.encode(
        ImagesResponse(
            created=int(time.time()),
            data=[ImageData(b64_json=item.b64_json) for item in result.data],
            output_format=result.output_format or "png",
            size=plan.size,
        )
    )
    charged = await settle(
        ctx,
        hold,
        DeliveredUsage(images=plan.n, steps=plan.n * plan.steps),
        outcome="ok",
        attempt=delivered.attempt,
    )
    gw.metrics.images.child(task.id).inc(plan.n)
    finish_json(
        ctx,
        task,
        state,
        kind=kind,
        miner_request=miner_request,
        result=result,
        receipt=delivered.receipt,
    )
    return json_response(
        body, headers={**hold.headers, **charged, "x-sn19-attempts": str(len(state.attempts))}
    )
