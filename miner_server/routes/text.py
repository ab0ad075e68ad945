"""``POST /v1/chat/completions`` and ``POST /v1/completions`` (signed).

Order of checks: signature (401) → body (400 naming the field) → model (404) → unsupported
features and limits (400) → in-flight limit (429). Errors before the first token are HTTP
errors (the first batch of events is awaited before the response starts); after it, a stream
ends with a ``data: {"error": ...}`` event and no ``[DONE]``. A client disconnect cancels the
engine; the in-flight slot is released when the response ends, however it ends.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, post
from litestar.types import ASGIApp

from inference.base import EngineError, TextEngine, TextEvent
from miner_server.auth import Caller
from miner_server.deps import Miner, SignedRequest, decode
from miner_server.errors import ClientClosed, EngineFailure, MinerError, from_engine_error
from miner_server.events import ClientGone, DisconnectWatch, EventBatches
from miner_server.render import ChatRenderer, CompletionRenderer, Renderer
from miner_server.responses import EventStream, log_engine_failure
from miner_server.state import MinerState, Served
from miner_server.textmap import TextCall, chat_call, completion_call
from miner_server.wire import CompletionBody
from protocol.miner import MinerChatRequest
from protocol.sse import DONE, data_event

logger = logging.getLogger(__name__)

_CHAT = msgspec.json.Decoder(MinerChatRequest)
_COMPLETION = msgspec.json.Decoder(CompletionBody)


@post("/v1/chat/completions", status_code=200)
async def chat_completions(
    request: Request[Any, Any, Any], miner: Miner, signed: SignedRequest
) -> ASGIApp:
    body = decode(_CHAT, signed.body)
    served = miner.chat_task(body.model)
    call = chat_call(body, served.task, served.engine.count_prompt_tokens)
    renderer = ChatRenderer(call, f"chatcmpl-{os.urandom(12).hex()}", int(time.time()))
    return await serve_text(request, miner, signed.caller, served, call, renderer)


@post("/v1/completions", status_code=200)
async def completions(
    request: Request[Any, Any, Any], miner: Miner, signed: SignedRequest
) -> ASGIApp:
    body = decode(_COMPLETION, signed.body)
    served = miner.chat_task(body.model)
    call = completion_call(body, served.task, served.engine.count_prompt_tokens)
    renderer = CompletionRenderer(call, f"cmpl-{os.urandom(12).hex()}", int(time.time()))
    return await serve_text(request, miner, signed.caller, served, call, renderer)


async def serve_text(
    request: Request[Any, Any, Any],
    miner: MinerState,
    caller: Caller,
    served: Served[TextEngine],
    call: TextCall,
    renderer: Renderer,
) -> ASGIApp:
    slot = served.limiter.acquire(caller)
    try:
        batches = EventBatches(served.engine.generate(call.request))
    except BaseException:
        slot.release()
        raise
    watch = DisconnectWatch(request.receive, batches.abort)

    def cleanup() -> None:
        watch.stop()
        batches.close()
        slot.release()

    streaming = False
    try:
        if not call.stream:
            events: list[TextEvent] = []
            while batch := await batches.next():
                events.extend(batch)
            prompt_tokens = served.engine.count_prompt_tokens(call.request)
            return miner.json(caller, renderer.response(events, prompt_tokens))
        first = await batches.next()
        streaming = True
    except Exception as exc:
        raise as_http_error(exc) from exc
    finally:
        if not streaming:
            cleanup()
    stream = _sse(first, batches, renderer, call, served.engine)
    return EventStream(stream, cleanup, miner.trailer(caller))


async def _sse(
    batch: list[TextEvent],
    batches: EventBatches,
    renderer: Renderer,
    call: TextCall,
    engine: TextEngine,
) -> AsyncIterator[bytes]:
    try:
        while True:
            out = renderer.chunks(batch)
            if batches.finished:
                break
            yield out
            batch = await batches.next()
            if not batch:
                out = b""
                break
    except ClientGone:
        return
    except Exception as exc:  # after the first byte: an in-band error, and no [DONE]
        error = as_http_error(exc)
        if isinstance(error, EngineFailure):
            log_engine_failure("stream after its first token", error)
        else:
            logger.warning("stream failed after its first token: %s", exc, exc_info=exc)
        yield data_event(error.body())
        return
    if call.include_usage:
        out += renderer.usage_chunk(engine.count_prompt_tokens(call.request))
    yield out + DONE


def as_http_error(exc: Exception) -> MinerError:
    """What a generation failure looks like to the client (the 5xx are logged by the renderer)."""
    if isinstance(exc, MinerError):
        return exc
    if isinstance(exc, ClientGone):
        return ClientClosed("Client closed the request.")
    if isinstance(exc, EngineError):
        return from_engine_error(exc)
    return MinerError("Internal error while generating.")
