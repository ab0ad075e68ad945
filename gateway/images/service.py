"""Image generation and edits: validate against the task, ask a miner, check its images.

``response_format`` defaults to ``b64_json``; with ``url`` the images are kept in Redis for a
while and the answer links to them (``gateway.images.files``). ``size``
must be one of the task's sizes (``auto``: the default), ``n`` at most its ``max_n``, ``steps``
at most its ``max_steps``. A request without ``seed`` gets one (kept for the checker). Every
image a miner returns is decoded with Pillow and checked against the asked size before the
client sees it; a miner returning garbage fails over to the next.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from billing import Usage, estimate_image
from core.miners.requests import ImagePlan
from gateway.context import RequestContext
from gateway.events import ENCODER
from gateway.exchange import Exchange, Kind
from gateway.http import JSONResponse, json_response
from gateway.images.decode import check_miner_images
from gateway.images.files import store_images
from protocol.catalog import Task
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
EDITS_PATH = "/v1/images/edits"


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
    kind: Kind,
    url_base: str | None = None,
) -> JSONResponse:
    """``url_base``: answer with URLs under it (``response_format: "url"``), else base64."""

    async def check(result: MinerImagesResponse) -> None:
        encoded = [item.b64_json for item in result.data]
        await asyncio.to_thread(
            check_miner_images, encoded, count=plan.n, width=plan.width, height=plan.height
        )

    exchange = Exchange(
        ctx,
        task,
        kind=kind,
        estimate=estimate_image(plan.n, plan.steps),
        miner_request=miner_request,
    )
    async with exchange:
        delivered = await exchange.call(
            path,
            ENCODER.encode(miner_request),
            decode=RESPONSE.decode,
            check=check,
            units=lambda _: float(plan.n * plan.steps),
            max_bytes=plan.n * (MAX_IMAGE_B64 + 4096) + 65_536,
        )
        result = delivered.value
        output_format = result.output_format or "png"
        if url_base is None:
            data = [ImageData(b64_json=item.b64_json) for item in result.data]
        else:
            urls = await store_images(
                ctx.gateway, url_base, [item.b64_json for item in result.data], output_format
            )
            data = [ImageData(url=url) for url in urls]
        body = ENCODER.encode(
            ImagesResponse(
                created=int(time.time()),
                data=data,
                output_format=output_format,
                size=plan.size,
            )
        )
        exchange.complete(
            Usage(images=plan.n, steps=plan.n * plan.steps),
            result=result,
            receipt=delivered.receipt,
            attempt=delivered.attempt,
            volume=float(plan.n * plan.steps),
        )
    return json_response(body, headers=exchange.response_headers())
