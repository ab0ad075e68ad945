"""The loosely typed OpenAI fields, checked into one shape.

Completions' ``prompt`` and embeddings' ``input`` each accept a string, a list of strings, a list
of token ids or a list of token-id lists. msgspec decodes them as ``str | list[str | int |
list[int]]`` (a union may hold only one array type); these functions check the shape and return
one normalised form, raising ``ShapeError`` that names the offending field.
"""

from __future__ import annotations

MAX_PROMPT_TOKEN_IDS = 1_000_000
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 200_000
MAX_EMBEDDING_TOKEN_IDS = 65_536

LooseTexts = str | list[str | int | list[int]]


class ShapeError(ValueError):
    """A field has the wrong shape. ``unsupported``: valid for OpenAI, refused by SN19.
    ``code``: the error code, when more precise than ``invalid_value``."""

    def __init__(
        self, message: str, *, param: str, unsupported: bool = False, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.unsupported = unsupported
        self.code = code


def _token_ids(items: object, param: str, limit: int) -> list[int]:
    if (
        not isinstance(items, list)
        or not items
        or len(items) > limit
        or not all(type(item) is int and item >= 0 for item in items)
    ):
        raise ShapeError(
            f"'{param}' must be a string, a list of strings, or a non-empty list of token ids "
            f"(integers >= 0, at most {limit}).",
            param=param,
        )
    return items


def prompt_of(prompt: LooseTexts) -> str | list[int]:
    """The one prompt of a completion request: a string or token ids. Batches are refused."""
    if isinstance(prompt, str):
        return prompt
    if not prompt:
        raise ShapeError("'prompt' must not be empty.", param="prompt")
    first = prompt[0]
    if isinstance(first, int):
        return _token_ids(prompt, "prompt", MAX_PROMPT_TOKEN_IDS)
    if len(prompt) > 1:
        raise ShapeError(
            "Send one prompt per request; batches of prompts are not supported.",
            param="prompt",
            unsupported=True,
        )
    if isinstance(first, str):
        return first
    return _token_ids(first, "prompt", MAX_PROMPT_TOKEN_IDS)


def _text(item: object, index: int) -> str:
    if not isinstance(item, str) or len(item) > MAX_INPUT_CHARS:
        raise ShapeError(
            f"'input[{index}]' must be a string of at most {MAX_INPUT_CHARS} characters "
            "(every item a string, or every item a list of token ids).",
            param=f"input[{index}]",
        )
    if not item:
        raise ShapeError("Inputs must not be empty strings.", param=f"input[{index}]")
    return item


def inputs_of(value: LooseTexts) -> list[str] | list[list[int]]:
    """Embedding input as a list of texts or a list of token-id lists."""
    if isinstance(value, str):
        return [_text(value, 0)]
    if not value:
        raise ShapeError("'input' must not be empty.", param="input")
    if len(value) > MAX_INPUTS:
        raise ShapeError(
            f"At most {MAX_INPUTS} inputs per request.", param="input", code="too_many_inputs"
        )
    first = value[0]
    if isinstance(first, int):
        return [_token_ids(value, "input", MAX_EMBEDDING_TOKEN_IDS)]
    if isinstance(first, str):
        return [_text(item, index) for index, item in enumerate(value)]
    return [
        _token_ids(item, f"input[{index}]", MAX_EMBEDDING_TOKEN_IDS)
        for index, item in enumerate(value)
    ]
