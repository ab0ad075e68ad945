"""Request types as the gateway decodes them.

``protocol``'s completions ``prompt`` and embeddings ``input`` are unions of several array
types, which msgspec cannot decode; these subclasses decode that one field as
``str | list[Any]`` and ``prompt_of`` / ``inputs_of`` check its shape (400 naming the field).
Everything else (names, bounds, unknown-field refusal) is ``protocol``'s.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidRequest
from gateway.validation import unsupported
from protocol.openai.chat import ChatCompletionChunk
from protocol.openai.completions import MAX_PROMPT_TOKEN_IDS, CompletionChunk, CompletionRequest
from protocol.openai.embeddings import MAX_INPUT_CHARS, MAX_INPUTS, EmbeddingRequest

MAX_EMBEDDING_TOKEN_IDS = 65_536


class CompletionBody(CompletionRequest, forbid_unknown_fields=True, omit_defaults=True):
    prompt: str | list[Any]


class EmbeddingBody(EmbeddingRequest, forbid_unknown_fields=True, omit_defaults=True):
    input: str | list[Any]


def _token_ids(items: object, param: str, limit: int) -> list[int]:
    if (
        not isinstance(items, list)
        or not items
        or len(items) > limit
        or not all(type(item) is int and item >= 0 for item in items)
    ):
        raise InvalidRequest(
            f"'{param}' must be a string, a list of strings, or a non-empty list of token ids "
            f"(integers >= 0, at most {limit}).",
            param=param,
        )
    return items


def prompt_of(prompt: str | list[Any]) -> str | list[int]:
    """The one prompt of a completion request: a string or token ids. Batches are refused."""
    if isinstance(prompt, str):
        return prompt
    if not prompt:
        raise InvalidRequest("'prompt' must not be empty.", param="prompt")
    first = prompt[0]
    if isinstance(first, int):
        return _token_ids(prompt, "prompt", MAX_PROMPT_TOKEN_IDS)
    if len(prompt) > 1:
        raise unsupported("prompt", "Send one prompt per request; batches are not supported.")
    if isinstance(first, str):
        return first
    return _token_ids(first, "prompt", MAX_PROMPT_TOKEN_IDS)


def _text(item: object, index: int) -> str:
    if not isinstance(item, str) or len(item) > MAX_INPUT_CHARS:
        raise InvalidRequest(
            f"'input[{index}]' must be a string of at most {MAX_INPUT_CHARS} characters "
            "(every item a string, or every item a list of token ids).",
            param=f"input[{index}]",
        )
    if not item:
        raise InvalidRequest("Inputs must not be empty strings.", param=f"input[{index}]")
    return item


def inputs_of(value: str | list[Any]) -> list[str] | list[list[int]]:
    """OpenAI's four embedding input shapes as a list of texts or of token-id lists."""
    if isinstance(value, str):
        return [_text(value, 0)]
    if not value:
        raise InvalidRequest("'input' must not be empty.", param="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"'input' has more than {MAX_INPUTS} items.", param="input")
    first = value[0]
    if isinstance(first, int):
        return [_token_ids(value, "input", MAX_EMBEDDING_TOKEN_IDS)]
    if isinstance(first, str):
        return [_text(item, index) for index, item in enumerate(value)]
    return [
        _token_ids(item, f"input[{index}]", MAX_EMBEDDING_TOKEN_IDS)
        for index, item in enumerate(value)
    ]


class ChatChunkOut(ChatCompletionChunk, omit_defaults=False):
    """``protocol``'s chunk with ``object`` always on the wire (its ``omit_defaults`` drops the
    ``"chat.completion.chunk"`` default, which OpenAI clients expect); unset fields stay off."""


class CompletionChunkOut(CompletionChunk, omit_defaults=False):
    """``protocol``'s completion chunk with ``object: "text_completion"`` always sent."""
