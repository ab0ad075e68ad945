"""Request types as this server decodes them, and the checks of their loosely typed fields.

The shapes of completions' ``prompt`` and embeddings' ``input`` are checked by
``protocol.openai.shapes`` (shared with the gateway); refusals become this server's 400s.
"""

from __future__ import annotations

from miner_server.errors import InvalidRequest, Unsupported
from protocol.miner import MinerCompletionRequest
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.shapes import LooseTexts, ShapeError, inputs_of, prompt_of

CompletionBody = MinerCompletionRequest
EmbeddingBody = EmbeddingRequest


def _refusal(error: ShapeError) -> InvalidRequest:
    if error.unsupported:
        return Unsupported(error.param, f": {error}")
    return InvalidRequest(str(error), param=error.param)


def prompt_parts(prompt: LooseTexts) -> tuple[str | None, tuple[int, ...] | None]:
    """One prompt as a string or as token ids; a batch of several prompts is refused."""
    try:
        checked = prompt_of(prompt)
    except ShapeError as exc:
        raise _refusal(exc) from None
    if isinstance(checked, str):
        return checked, None
    return None, tuple(checked)


def embedding_inputs(value: LooseTexts) -> list[str] | list[list[int]]:
    """OpenAI's four input shapes as a list of texts or a list of token-id lists."""
    try:
        return inputs_of(value)
    except ShapeError as exc:
        raise _refusal(exc) from None
