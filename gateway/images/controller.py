"""`POST /v1/images/generations` and `POST /v1/images/edits`."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.types import ASGIApp

from core.errors import InvalidRequest
from core.miners.requests import miner_generation, plan_image
from gateway.context import begin, resolve_task
from gateway.images.edits import read_edit_form
from gateway.images.files import url_base
from gateway.images.service import (
    EDITS_PATH,
    GENERATION_REQUEST,
    GENERATIONS_PATH,
    miner_edit,
    serve_images,
)
from gateway.state import Gateway
from gateway.validation import decode, json_body, unsupported

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"


@post(GENERATIONS, status_code=200)
async def generations(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx = await begin(request, gateway, GENERATIONS)
    body = decode(GENERATION_REQUEST, await json_body(request))
    task = resolve_task(ctx, body.model, "image", GENERATIONS)
    assert task.image is not None
    plan = plan_image(task.image, body)
    miner_request = miner_generation(task, body, plan)
    response: ASGIApp = await serve_images(
        ctx,
        task,
        plan,
        GENERATIONS_PATH,
        miner_request,
        kind="image",
        url_base=url_base(request, gateway) if body.response_format == "url" else None,
    )
    return response


def edits_handler(max_upload_bytes: int) -> Any:
    """The edits route, with the upload size limit from settings (a body over it is a 413)."""

    @post(EDITS, status_code=200, request_max_body_size=max_upload_bytes)
    async def edits(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
        ctx = await begin(request, gateway, EDITS)
        upload = await read_edit_form(request, max_upload_bytes)
        task = resolve_task(ctx, upload.fields.model, "image", EDITS)
        spec = task.image
        assert spec is not None
        if not spec.edits:
            raise InvalidRequest(f"The model '{task.id}' does not support edits.", param="model")
        if upload.mask is not None and not spec.inpainting:
            raise unsupported("mask", f"The model '{task.id}' cannot inpaint; omit the mask.")
        plan = plan_image(spec, upload.fields)
        miner_request = miner_edit(task, upload.fields, plan, upload.image_b64(), upload.mask_b64())
        response: ASGIApp = await serve_images(
            ctx,
            task,
            plan,
            EDITS_PATH,
            miner_request,
            kind="image_edit",
            url_base=url_base(request, gateway) if upload.fields.response_format == "url" else None,
        )
        return response

    return edits
