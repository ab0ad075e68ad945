"""Validating a chat request and planning the miner call.

Refused with a 400 naming the parameter: tools and functions, ``response_format`` other than
text, non-zero penalties, ``logit_bias``, audio/image/file content, ``top_logprobs`` without
``logprobs``, ``n`` above the task's ``max_n``, ``stream_options`` without ``stream``, and
``max_tokens`` / ``max_completion_tokens`` beyond the task's output limit or context.

The miner is always asked to stream, with logprobs (``top_logprobs`` as the client asked) and
a final usage chunk; a request without ``seed`` gets one (kept for the checker).
"""

from __future__ import annotations

import random
import time

import msgspec

from core.errors import InvalidRequest
from gateway.accounting import CostEstimate
from gateway.chat.relay import ChatRelay, ChatRelayOptions
from gateway.context import RequestContext
from gateway.ids import object_id
from gateway.relay import TextPlan
from gateway.validation import unsupported
from protocol.catalog import Task, TextSpec
from protocol.miner import MinerChatChunk, MinerChatRequest
from protocol.openai.chat import ChatCompletionRequest, ChatMessage, StreamOptions, TextPart

REQUEST = msgspec.json.Decoder(ChatCompletionRequest)
CHUNK = msgspec.json.Decoder(MinerChatChunk)
MINER_PATH = "/v1/chat/completions"
SEED_RANGE = 2**31


def first_token(chunk: MinerChatChunk) -> bool:
    return any(
        choice.token_ids or choice.finish_reason is not None or choice.delta.content
        for choice in chunk.choices
    )


def _message_text(index: int, message: ChatMessage) -> str:
    where = f"messages[{index}]"
    if message.role == "tool" or message.tool_call_id is not None:
        raise unsupported(f"{where}.role", "Tool messages are not supported (no tool calling).")
    if message.tool_calls:
        raise unsupported(f"{where}.tool_calls", "Tool calls are not supported.")
    if message.function_call is not None:
        raise unsupported(f"{where}.function_call", "Function calls are not supported.")
    content = message.content
    if content is None:
        if message.role == "assistant":
            return ""
        raise InvalidRequest(f"'{where}.content' is required.", param=f"{where}.content")
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for position, part in enumerate(content):
        if not isinstance(part, TextPart):
            raise unsupported(
                f"{where}.content[{position}]",
                "Only text content parts are supported by this model.",
            )
        texts.append(part.text)
    return "\n".join(texts)


def turns_of(messages: list[ChatMessage]) -> list[tuple[str, str]]:
    """(role, text) per message; ``developer`` is sent as ``system``."""
    return [
        ("system" if message.role == "developer" else message.role, _message_text(i, message))
        for i, message in enumerate(messages)
    ]


def _reject_tools(request: ChatCompletionRequest) -> None:
    if request.tools:
        raise unsupported("tools", "Tool calling is not supported.")
    if request.tool_choice not in (None, "none"):
        raise unsupported("tool_choice", "Tool calling is not supported.")
    if request.functions:
        raise unsupported("functions", "Function calling is not supported.")
    if request.function_call not in (None, "none"):
        raise unsupported("function_call", "Function calling is not supported.")


def reject_unsupported(request: ChatCompletionRequest, text: TextSpec) -> None:
    _reject_tools(request)
    if request.response_format is not None and request.response_format.type != "text":
        raise unsupported("response_format", "Only response_format type 'text' is supported.")
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


def max_tokens_for(
    requested: int | None, param: str, text: TextSpec, prompt_tokens: int, *, exact: bool
) -> int:
    """The output budget: the client's, checked against the task; else what fits."""
    room = text.context_length - prompt_tokens
    if requested is None:
        if room <= 0 and exact:
            raise InvalidRequest(
                f"The prompt is {prompt_tokens} tokens; this model's context is "
                f"{text.context_length} tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        return min(text.max_output_tokens, room) if room > 0 else text.max_output_tokens
    if requested > text.max_output_tokens:
        raise InvalidRequest(
            f"{param} is {requested}; this model generates at most {text.max_output_tokens} "
            "tokens.",
            param=param,
        )
    if exact and requested > room:
        raise InvalidRequest(
            f"This model's context is {text.context_length} tokens: {prompt_tokens} in the "
            f"prompt plus {requested} requested ({param}) do not fit.",
            param=param,
            code="context_length_exceeded",
        )
    return requested


def plan_chat(
    ctx: RequestContext, task: Task, request: ChatCompletionRequest
) -> TextPlan[MinerChatChunk]:
    text = task.text
    assert text is not None
    reject_unsupported(request, text)
    turns = turns_of(request.messages)
    counter = ctx.gateway.counter(task.id)
    prompt_tokens = counter.chat(turns)
    requested, param = request.max_tokens, "max_tokens"
    if request.max_completion_tokens is not None and (
        requested is None or request.max_completion_tokens < requested
    ):
        requested, param = request.max_completion_tokens, "max_completion_tokens"
    max_tokens = max_tokens_for(requested, param, text, prompt_tokens, exact=counter.exact)
    n = request.n or 1
    top_logprobs = request.top_logprobs or 0
    stream = bool(request.stream)
    miner_request = MinerChatRequest(
        model=task.id,
        messages=[ChatMessage(role=role, content=content) for role, content in turns],  # type: ignore[arg-type]
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        n=n,
        stop=request.stop,
        seed=request.seed if request.seed is not None else random.randrange(SEED_RANGE),
        stream=True,
        stream_options=StreamOptions(include_usage=True),
        logprobs=True,
        top_logprobs=top_logprobs or None,
    )
    options = ChatRelayOptions(
        id=object_id("chatcmpl-"),
        created=int(time.time()),
        model=task.id,
        n=n,
        max_tokens=max_tokens,
        logprobs=bool(request.logprobs),
        top_logprobs=top_logprobs,
        include_usage=bool(
            stream and request.stream_options and request.stream_options.include_usage
        ),
        prompt_tokens=prompt_tokens,
        stream=stream,
    )
    return TextPlan(
        kind="chat",
        path=MINER_PATH,
        miner_request=miner_request,
        decode=CHUNK.decode,
        ready=first_token,
        new_relay=lambda: ChatRelay(options),
        stream=stream,
        estimate=CostEstimate(input_tokens=prompt_tokens, max_output_tokens=max_tokens, n=n),
        prompt_tokens=prompt_tokens,
    )
