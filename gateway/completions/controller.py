"""`POST /v1/completions`."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.types import ASGIApp

from gateway.completions.service import REQUEST, plan_completion
from gateway.context import begin, resolve_task
from gateway.state import Gateway
from gateway.text_serving import serve_text
from gateway.validation import decode, json_body

ROUTE = "/v1/completions"


@post(ROUTE, status_code=200)
async def completions(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx = await begin(request, gateway, ROUTE)
    body = decode(REQUEST, await json_body(request))
    task = resolve_task(ctx, body.model, "chat", ROUTE)
    response: ASGIApp = await serve_text(ctx, task, plan_completion(ctx, task, body))
    return response
