"""Validating a chat request and planning the miner call.

Tools, ``tool_choice`` and ``response_format`` are checked by ``gateway.chat.tools``. Refused
with a 400 naming the parameter: non-zero penalties, ``logit_bias``, audio/image/file content,
``top_logprobs`` without ``logprobs``, ``n`` above the task's ``max_n``, ``stream_options``
without ``stream``, and ``max_tokens`` / ``max_completion_tokens`` beyond the task's output
limit or context.

The miner is always asked to stream, with logprobs (``top_logprobs`` as the client asked) and
a final usage chunk; a request without ``seed`` gets one (kept for the checker). Tool calls are
read from the miner's completion text with the task's format (``protocol.tool_calls``) when the
request has tools and ``tool_choice`` is not ``none``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import msgspec

from core.errors import InvalidRequest
from core.miners.reader import CHAT_CHUNK, chat_first_token
from core.miners.requests import chat_call
from gateway.chat.render import ChatRenderer, ChatRenderOptions
from gateway.chat.tools import check_tools
from gateway.context import RequestContext
from gateway.ids import object_id
from gateway.text_serving import OPENAI_SSE, StreamFraming, TextPlan, TextRenderer
from gateway.validation import unsupported
from protocol.catalog import Task
from protocol.miner import MinerChatChunk
from protocol.openai.chat import ChatCompletionRequest

REQUEST = msgspec.json.Decoder(ChatCompletionRequest)
MINER_PATH = "/v1/chat/completions"


def reject_unsupported(request: ChatCompletionRequest, task: Task) -> None:
    text = task.text
    assert text is not None
    check_tools(request, task)
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(request, name):
            raise unsupported(name, f"{name} is not supported; send 0 or omit it.")
    if request.logit_bias:
        raise unsupported("logit_bias", "logit_bias is not supported.")
    if request.modalities is not None and request.modalities != ["text"]:
        raise unsupported("modalities", "Only text output is supported.")
    for name in ("audio", "prediction", "web_search_options"):
        if getattr(request, name) is not None:
            raise unsupported(name, f"{name} is not supported.")
    if request.top_logprobs is not None and not request.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs to be true.", param="top_logprobs")
    if (request.n or 1) > text.max_n:
        raise InvalidRequest(f"n must be at most {text.max_n} for this model.", param="n")
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "stream_options is only allowed when stream is true.", param="stream_options"
        )


def plan_chat(
    ctx: RequestContext,
    task: Task,
    request: ChatCompletionRequest,
    *,
    renderer: Callable[[ChatRenderOptions], TextRenderer[MinerChatChunk]] = ChatRenderer,
    framing: StreamFraming = OPENAI_SSE,
    object_prefix: str = "chatcmpl-",
) -> TextPlan[MinerChatChunk]:
    """The plan of a chat request; ``renderer`` / ``framing`` / ``object_prefix`` let another
    endpoint that maps onto chat (the Responses API) render the same miner stream its way."""
    text = task.text
    assert text is not None
    reject_unsupported(request, task)
    call = chat_call(task, request, ctx.gateway.counters[task.id])
    prompt_tokens, max_tokens, n = call.prompt_tokens, call.max_tokens, call.n
    top_logprobs = request.top_logprobs or 0
    stream = bool(request.stream)
    miner_request = call.request
    options = ChatRenderOptions(
        id=object_id(object_prefix),
        created=int(time.time()),
        model=task.id,
        n=n,
        logprobs=bool(request.logprobs),
        top_logprobs=top_logprobs,
        include_usage=bool(
            stream and request.stream_options and request.stream_options.include_usage
        ),
        prompt_tokens=prompt_tokens,
        stream=stream,
        tool_format=text.tool_format if request.tools and request.tool_choice != "none" else None,
    )
    return TextPlan(
        kind="chat",
        path=MINER_PATH,
        miner_request=miner_request,
        decode=CHAT_CHUNK.decode,
        ready=chat_first_token,
        new_renderer=partial(renderer, options),
        stream=stream,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        n=n,
        expect=call.expect,
        framing=framing,
    )
