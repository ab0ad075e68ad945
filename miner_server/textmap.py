"""OpenAI text requests → the engine's ``TextRequest``, refusing what no engine honours.

Pure functions (no web framework): the checker must rebuild the very same ``TextRequest`` from
a request to recompute a miner's answer, so this mapping is the contract for what a request
means. Notable choices:

- chat content parts are text only, joined with ``"\\n"`` (as vLLM does); roles pass unchanged;
- ``max_tokens``: chat takes the smaller of ``max_completion_tokens`` and ``max_tokens``; when
  neither is sent, the task's ``text.max_output_tokens`` capped by what the context leaves after
  the prompt; completions default to 16 as OpenAI does; more than ``max_output_tokens`` is a 400;
- temperature and top_p default to 1.0; ``top_logprobs`` (chat) or ``logprobs`` (completions)
  set how many alternatives each token shows;
- refused with a 400 naming the field: tools and functions, JSON response formats, non-zero
  penalties, ``logit_bias``, non-text content, ``echo``, ``suffix``, ``best_of`` ≠ ``n``, and
  completions prompt batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from inference.base import ChatTurn, TextRequest
from miner_server.errors import InvalidRequest, Unsupported
from miner_server.wire import CompletionBody, prompt_parts
from protocol.catalog import Task, TextSpec
from protocol.miner import MinerChatRequest, MinerCompletionRequest
from protocol.openai.chat import ChatMessage, RefusalPart, TextPart

COMPLETIONS_DEFAULT_MAX_TOKENS = 16

CountPrompt = Callable[[TextRequest], int]


@dataclass(frozen=True, slots=True)
class TextCall:
    """A validated text request: the engine's request plus how to render the answer."""

    request: TextRequest
    model: str
    stream: bool
    include_usage: bool
    # Alternatives shown per token (chat ``top_logprobs``, completions ``logprobs``).
    top_logprobs: int
    # vLLM's flag: token strings become ``token_id:<id>``.
    tokens_as_ids: bool


def chat_call(body: MinerChatRequest, task: Task, count_prompt: CountPrompt) -> TextCall:
    spec = _text_spec(task)
    _refuse_chat_features(body)
    turns = tuple(_turn(index, message) for index, message in enumerate(body.messages))
    requested = _smaller(body.max_completion_tokens, body.max_tokens)
    param = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    top = body.top_logprobs or 0
    request = _request(body, spec, top, messages=turns)
    request = _with_max_tokens(request, requested, None, spec, count_prompt, param)
    return _call(body, request, top)


def completion_call(body: CompletionBody, task: Task, count_prompt: CountPrompt) -> TextCall:
    spec = _text_spec(task)
    _refuse_common(body.frequency_penalty, body.presence_penalty, body.logit_bias)
    if body.echo:
        raise Unsupported("echo")
    if body.suffix:
        raise Unsupported("suffix")
    if body.best_of is not None and body.best_of != (body.n or 1):
        raise Unsupported("best_of", " (other than best_of = n)")
    prompt, prompt_ids = prompt_parts(body.prompt)
    top = body.logprobs or 0
    request = _request(body, spec, top, prompt=prompt, prompt_ids=prompt_ids)
    default = COMPLETIONS_DEFAULT_MAX_TOKENS
    request = _with_max_tokens(request, body.max_tokens, default, spec, count_prompt, "max_tokens")
    return _call(body, request, top)


# ---------------------------------------------------------------------------------------------


def _call(
    body: MinerChatRequest | MinerCompletionRequest, request: TextRequest, top: int
) -> TextCall:
    options = body.stream_options
    return TextCall(
        request=request,
        model=body.model,
        stream=bool(body.stream),
        include_usage=bool(body.stream and options is not None and options.include_usage),
        top_logprobs=top,
        tokens_as_ids=bool(body.return_tokens_as_token_ids),
    )


def _text_spec(task: Task) -> TextSpec:
    assert task.text is not None, "chat tasks have a text section (checked by the catalog)"
    return task.text


def _request(
    body: MinerChatRequest | MinerCompletionRequest,
    spec: TextSpec,
    top_logprobs: int,
    *,
    messages: tuple[ChatTurn, ...] | None = None,
    prompt: str | None = None,
    prompt_ids: tuple[int, ...] | None = None,
) -> TextRequest:
    n = body.n or 1
    if n > spec.max_n:
        raise InvalidRequest(f"n: at most {spec.max_n} choices per request.", param="n")
    stop = body.stop
    return TextRequest(
        max_tokens=1,  # set by _with_max_tokens
        messages=messages,
        prompt=prompt,
        prompt_ids=prompt_ids,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        n=n,
        seed=body.seed,
        stop=() if stop is None else (stop,) if isinstance(stop, str) else tuple(stop),
        top_logprobs=top_logprobs,
    )


def _with_max_tokens(
    request: TextRequest,
    requested: int | None,
    default: int | None,
    spec: TextSpec,
    count_prompt: CountPrompt,
    param: str,
) -> TextRequest:
    if requested is not None:
        if requested > spec.max_output_tokens:
            raise InvalidRequest(
                f"{param}: at most {spec.max_output_tokens} tokens per choice.",
                param=param,
                code="context_length_exceeded",
            )
        max_tokens = requested
    elif default is not None:
        max_tokens = min(default, spec.max_output_tokens)
    else:
        room = spec.context_length - count_prompt(request)
        if room <= 0:
            raise InvalidRequest(
                f"The prompt fills the model's context of {spec.context_length} tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        max_tokens = min(spec.max_output_tokens, room)
    return msgspec.structs.replace(request, max_tokens=max_tokens)


def _smaller(first: int | None, second: int | None) -> int | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def _refuse_common(
    frequency_penalty: float | None, presence_penalty: float | None, logit_bias: object
) -> None:
    if frequency_penalty:
        raise Unsupported("frequency_penalty", " (other than 0)")
    if presence_penalty:
        raise Unsupported("presence_penalty", " (other than 0)")
    if logit_bias:
        raise Unsupported("logit_bias")


def _refuse_chat_features(body: MinerChatRequest) -> None:
    _refuse_common(body.frequency_penalty, body.presence_penalty, body.logit_bias)
    if body.tools:
        raise Unsupported("tools")
    if body.tool_choice is not None and body.tool_choice != "none":
        raise Unsupported("tool_choice")
    if body.functions:
        raise Unsupported("functions")
    if body.function_call is not None and body.function_call != "none":
        raise Unsupported("function_call")
    if body.response_format is not None and body.response_format.type != "text":
        raise Unsupported("response_format", " (only type `text`)")
    for name in ("audio", "prediction", "web_search_options"):
        if getattr(body, name) is not None:
            raise Unsupported(name)
    if body.modalities and any(modality != "text" for modality in body.modalities):
        raise Unsupported("modalities", " (only `text`)")


def _turn(index: int, message: ChatMessage) -> ChatTurn:
    where = f"messages[{index}]"
    if message.role == "tool" or message.tool_call_id is not None:
        raise Unsupported(f"{where}.role", " (tool messages)")
    if message.tool_calls or message.function_call is not None:
        raise Unsupported(f"{where}.tool_calls")
    content = message.content
    if content is None:
        return ChatTurn(role=message.role, content="")
    if isinstance(content, str):
        return ChatTurn(role=message.role, content=content)
    texts: list[str] = []
    for position, part in enumerate(content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            texts.append(part.refusal)
        else:
            raise Unsupported(f"{where}.content[{position}]", " (only text parts)")
    return ChatTurn(role=message.role, content="\n".join(texts))
