"""OpenAI text requests → the engine's ``TextRequest``, refusing what no engine honours.

The mapping itself lives in ``inference.requests`` (the checker rebuilds the very same
``TextRequest`` from a request to recompute a miner's answer, so it is shared); this module adds
what the miner needs to render the answer (``TextCall``) and turns the mapping's refusals into
this server's 400s (``Unsupported`` for fields OpenAI accepts that no engine honours).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from inference import requests as mapping
from inference.base import TextRequest
from miner_server.errors import InvalidRequest, Unsupported
from miner_server.wire import CompletionBody
from protocol.catalog import Task, TextSpec
from protocol.miner import MinerChatRequest, MinerCompletionRequest

COMPLETIONS_DEFAULT_MAX_TOKENS = mapping.COMPLETIONS_DEFAULT_MAX_TOKENS

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
    with refusals():
        request = mapping.chat_text_request(body, _text_spec(task), count_prompt)
    return _call(body, request, body.top_logprobs or 0)


def completion_call(body: CompletionBody, task: Task, count_prompt: CountPrompt) -> TextCall:
    with refusals():
        request = mapping.completion_text_request(body, _text_spec(task), count_prompt)
    return _call(body, request, body.logprobs or 0)


@contextmanager
def refusals() -> Iterator[None]:
    """The shared mapping's refusals as this server's 400s."""
    try:
        yield
    except mapping.RequestRefused as exc:
        if exc.unsupported is not None and exc.param is not None:
            raise Unsupported(exc.param, exc.unsupported) from None
        raise InvalidRequest(exc.message, param=exc.param, code=exc.code) from None


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
