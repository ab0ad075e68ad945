"""Validating a legacy completion request and planning the miner call.

One prompt per request (a string, or token ids; a list holding exactly one of either is
accepted); batches, ``echo``, ``suffix`` and ``best_of`` other than ``n`` are refused with a 400,
as are penalties and ``logit_bias``. ``max_tokens`` defaults to 16, as OpenAI's does.
"""

from __future__ import annotations

import time
from functools import partial

import msgspec

from core.errors import InvalidRequest
from core.miners.reader import COMPLETION_CHUNK, completion_first_token
from core.miners.requests import completion_call
from gateway.completions.render import CompletionRenderer, CompletionRenderOptions
from gateway.context import RequestContext
from gateway.ids import object_id
from gateway.text_serving import TextPlan
from gateway.validation import shaped, unsupported
from protocol.catalog import Task
from protocol.miner import MinerCompletionChunk
from protocol.openai.completions import CompletionRequest
from protocol.openai.shapes import ShapeError, prompt_of

REQUEST = msgspec.json.Decoder(CompletionRequest)
MINER_PATH = "/v1/completions"


def reject_unsupported(request: CompletionRequest, max_n: int) -> None:
    if request.echo:
        raise unsupported("echo", "echo is not supported.")
    if request.suffix:
        raise unsupported("suffix", "suffix is not supported.")
    n = request.n or 1
    if request.best_of is not None and request.best_of != n:
        raise unsupported("best_of", "best_of must equal n (or be omitted).")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(request, name):
            raise unsupported(name, f"{name} is not supported; send 0 or omit it.")
    if request.logit_bias:
        raise unsupported("logit_bias", "logit_bias is not supported.")
    if n > max_n:
        raise InvalidRequest(f"n must be at most {max_n} for this model.", param="n")
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "stream_options is only allowed when stream is true.", param="stream_options"
        )


def plan_completion(
    ctx: RequestContext, task: Task, request: CompletionRequest
) -> TextPlan[MinerCompletionChunk]:
    text = task.text
    assert text is not None
    reject_unsupported(request, text.max_n)
    try:
        prompt = prompt_of(request.prompt)
    except ShapeError as exc:
        raise shaped(exc) from None
    call = completion_call(task, request, prompt, ctx.gateway.counters[task.id])
    prompt_tokens, max_tokens, n = call.prompt_tokens, call.max_tokens, call.n
    stream = bool(request.stream)
    miner_request = call.request
    options = CompletionRenderOptions(
        id=object_id("cmpl-"),
        created=int(time.time()),
        model=task.id,
        n=n,
        logprobs=request.logprobs,
        include_usage=bool(
            stream and request.stream_options and request.stream_options.include_usage
        ),
        prompt_tokens=prompt_tokens,
        stream=stream,
    )
    return TextPlan(
        kind="completion",
        path=MINER_PATH,
        miner_request=miner_request,
        decode=COMPLETION_CHUNK.decode,
        ready=completion_first_token,
        new_renderer=partial(CompletionRenderer, options),
        stream=stream,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        n=n,
    )
