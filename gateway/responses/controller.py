"""`POST /v1/responses`: mapped onto a chat request (``gateway.responses.convert``), planned,
billed, routed, checked and receipted exactly like chat (``gateway.chat.service``), and
rendered as the Responses API (``gateway.responses.render``)."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
from litestar import Request, post
from litestar.types import ASGIApp

from gateway.chat.service import plan_chat
from gateway.context import begin, resolve_task
from gateway.responses.convert import to_chat
from gateway.responses.render import RESPONSES_SSE, ResponsesRenderer
from gateway.state import Gateway
from gateway.text_serving import serve_text
from gateway.validation import decode
from protocol.openai.responses import ResponsesRequest

ROUTE = "/v1/responses"
REQUEST = msgspec.json.Decoder(ResponsesRequest)


@post(ROUTE, status_code=200)
async def responses(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx = await begin(request, gateway, ROUTE)
    body = decode(REQUEST, await request.body())
    task = resolve_task(ctx, body.model, "chat", ROUTE)
    mapped = to_chat(body)
    plan = plan_chat(
        ctx,
        task,
        mapped.chat,
        renderer=partial(ResponsesRenderer, mapped=mapped),
        framing=RESPONSES_SSE,
        object_prefix="resp_",
    )
    response: ASGIApp = await serve_text(ctx, task, plan)
    return response
