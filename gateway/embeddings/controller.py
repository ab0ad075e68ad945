"""`POST /v1/embeddings`."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.types import ASGIApp

from gateway.context import begin, resolve_task
from gateway.embeddings.service import REQUEST, serve_embeddings
from gateway.state import Gateway
from gateway.validation import decode, json_body

ROUTE = "/v1/embeddings"


@post(ROUTE, status_code=200)
async def embeddings(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx = await begin(request, gateway, ROUTE)
    body = decode(REQUEST, await json_body(request))
    task = resolve_task(ctx, body.model, "embedding", ROUTE)
    response: ASGIApp = await serve_embeddings(ctx, task, body)
    return response
