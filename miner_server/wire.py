"""Request types as this server decodes them.

``protocol``'s completions ``prompt`` and embeddings ``input`` are unions of several array types
(``list[str] | list[int] | list[list[int]]``), which msgspec cannot decode ("Type unions may not
contain more than one array-like type"). These subclasses decode that one field as
``str | list[Any]``; its shape is checked by ``prompt_parts`` / ``embedding_inputs``. Everything
else (field names, bounds, unknown-field refusal) is ``protocol``'s.
"""

from __future__ import annotations

from typing import Any

from miner_server.errors import InvalidRequest, Unsupported
from protocol.miner import MinerCompletionRequest
from protocol.openai.completions import MAX_PROMPT_TOKEN_IDS
from protocol.openai.embeddings import MAX_INPUT_CHARS, MAX_INPUTS, EmbeddingRequest

MAX_EMBEDDING_TOKEN_IDS = 65_536


class CompletionBody(MinerCompletionRequest, forbid_unknown_fields=True, omit_defaults=True):
    prompt: str | list[Any]


class EmbeddingBody(EmbeddingRequest, forbid_unknown_fields=True, omit_defaults=True):
    input: str | list[Any]


def prompt_parts(prompt: str | list[Any]) -> tuple[str | None, tuple[int, ...] | None]:
    """One prompt as a string or as token ids; a batch of several prompts is refused."""
    if isinstance(prompt, str):
        return prompt, None
    if not prompt:
        raise InvalidRequest("prompt: must not be empty.", param="prompt")
    first = prompt[0]
    if not isinstance(first, int) and len(prompt) > 1:
        raise Unsupported("prompt", " as a batch of several prompts; send one per request")
    if isinstance(first, str):
        return first, None
    ids = _token_ids(prompt if isinstance(first, int) else first, "prompt", MAX_PROMPT_TOKEN_IDS)
    return None, tuple(ids)


def embedding_inputs(value: str | list[Any]) -> list[str] | list[list[int]]:
    """OpenAI's four input shapes as a list of texts or a list of token-id lists."""
    if isinstance(value, str):
        return [_text(value)]
    if not value:
        raise InvalidRequest("input: must not be empty.", param="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"input: at most {MAX_INPUTS} items.", param="input")
    first = value[0]
    if isinstance(first, int):
        return [_token_ids(value, "input", MAX_EMBEDDING_TOKEN_IDS)]
    if isinstance(first, str):
        return [_text(item) for item in value]
    return [_token_ids(item, "input", MAX_EMBEDDING_TOKEN_IDS) for item in value]


def _text(item: object) -> str:
    if not isinstance(item, str) or len(item) > MAX_INPUT_CHARS:
        raise InvalidRequest(
            f"input: every item must be a string of at most {MAX_INPUT_CHARS} characters, "
            "or every item a list of token ids.",
            param="input",
        )
    return item


def _token_ids(items: object, param: str, limit: int) -> list[int]:
    if (
        not isinstance(items, list)
        or not items
        or len(items) > limit
        or not all(type(item) is int and item >= 0 for item in items)
    ):
        raise InvalidRequest(
            f"{param}: expected a string, a list of strings, or non-empty lists of token ids "
            f"(integers >= 0, at most {limit}).",
            param=param,
        )
    return items
