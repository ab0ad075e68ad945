"""Engine interfaces: what a miner serves from and what the checker recomputes with.

Three kinds of engine, one per task kind:

- ``TextEngine``: generates tokens with their ids and raw (temperature-1) logprobs, one event per
  token, per choice; handles stop strings itself (the text it emits for a token excludes any stop
  sequence, held back until it can no longer be the start of one).
- ``ImageEngine``: text-to-image, image-to-image and (where supported) inpainting; returns PNGs.
- ``EmbeddingEngine``: vectors plus the number of input tokens.

Determinism: the same request with the same seed gives the same output on the same machine.
Engines are built by ``inference.registry.load_engine`` from a catalog ``EngineSpec``; heavy
libraries (torch, diffusers, vllm) are imported inside the engine modules, never at import of
this package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec


class EngineError(RuntimeError):
    """The engine could not serve a request (bad input for this model, upstream failure)."""


class EngineInputError(EngineError):
    """The request is invalid for this engine (too long, unsupported option): a client error."""


# ---------------------------------------------------------------------------------------------
# Text


class ToolCallText(msgspec.Struct, frozen=True):
    """A tool call an assistant made in an earlier turn (``arguments``: JSON text)."""

    name: str
    arguments: str


class ChatTurn(msgspec.Struct, frozen=True):
    role: str
    content: str
    tool_calls: tuple[ToolCallText, ...] = ()
    tool_call_id: str | None = None


class Constraint(msgspec.Struct, frozen=True):
    """The shape the answer must take, decoded under a grammar (``inference.grammars``):
    JSON under ``schema`` (JSON text; ``response_format``), or one call, written in
    ``tool_format``, to one of ``tools`` ((name, parameters schema as JSON text);
    ``tool_choice`` required or named). Built from the request by ``inference.requests``, so a
    miner and the checker build the same grammar. ``grammar``: that grammar as EBNF text
    (``inference.grammars.grammar_text``), as an OpenAI-compatible server receives it in vLLM's
    ``structured_outputs``."""

    schema: str | None = None
    tools: tuple[tuple[str, str], ...] = ()
    tool_format: Literal["hermes", "llama3_json"] = "hermes"
    grammar: str | None = None


class TextRequest(msgspec.Struct, frozen=True):
    """A generation request. Exactly one of ``messages`` (chat), ``prompt`` (text) or
    ``prompt_ids`` (token ids) is set. ``tools`` (plain JSON definitions) are rendered into a
    chat prompt by the model's template; ``constraint`` restricts what may be generated."""

    max_tokens: int
    messages: tuple[ChatTurn, ...] | None = None
    tools: tuple[Any, ...] = ()
    constraint: Constraint | None = None
    prompt: str | None = None
    prompt_ids: tuple[int, ...] | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0


class TopToken(msgspec.Struct, frozen=True, array_like=True):
    """An alternative at one position: ``token`` its text, ``token_bytes`` its raw bytes (a
    byte-fallback token's one byte, not the UTF-8 of the U+FFFD its text shows)."""

    token_id: int
    token: str
    logprob: float
    token_bytes: bytes = b""


class TokenEvent(msgspec.Struct, frozen=True):
    """One generated token of one choice.

    ``token`` is the token's own text (what OpenAI's ``logprobs.content[].token`` shows; a byte
    token that is half of a UTF-8 character shows as its bytes' best decoding), ``text`` is the
    text this token adds to the visible output (empty while it may still be part of a stop
    sequence, and never containing one).
    """

    choice: int
    token_id: int
    token: str
    text: str
    logprob: float
    token_bytes: bytes = b""
    top: tuple[TopToken, ...] = ()


class ChoiceEnd(msgspec.Struct, frozen=True):
    """A choice finished. ``text`` flushes visible text held back for stop-sequence matching."""

    choice: int
    finish_reason: Literal["stop", "length"]
    text: str = ""


TextEvent = TokenEvent | ChoiceEnd


@runtime_checkable
class TextEngine(Protocol):
    kind: Literal["chat"]

    async def start(self) -> None:
        """Load the model (in a worker thread; may take a while)."""

    async def close(self) -> None: ...

    def count_prompt_tokens(self, request: TextRequest) -> int:
        """Tokens of the prompt as the model will see it (chat template applied)."""

    def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        """Token events of every choice (interleaved or one after another), each choice closed
        by exactly one ``ChoiceEnd``. Cancelling the iterator stops generation."""


# ---------------------------------------------------------------------------------------------
# Image


class ImageRequest(msgspec.Struct, frozen=True):
    prompt: str
    width: int
    height: int
    steps: int
    seed: int
    n: int = 1
    negative_prompt: str = ""
    guidance_scale: float = 7.5
    init_image: bytes | None = None  # encoded image (PNG/JPEG/WebP) for image-to-image
    mask_image: bytes | None = None  # white = repaint, for inpainting
    strength: float = 0.75
    output_format: Literal["png", "jpeg", "webp"] = "png"


@runtime_checkable
class ImageEngine(Protocol):
    kind: Literal["image"]
    supports_inpainting: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def generate(self, request: ImageRequest) -> list[bytes]:
        """``request.n`` encoded images; image ``i`` uses seed ``request.seed + i``."""


# ---------------------------------------------------------------------------------------------
# Embeddings


class EmbeddingResult(msgspec.Struct, frozen=True):
    vectors: list[list[float]]
    prompt_tokens: int


@runtime_checkable
class EmbeddingEngine(Protocol):
    kind: Literal["embedding"]
    dimensions: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def count_tokens(self, inputs: list[str] | list[list[int]]) -> int: ...

    async def embed(
        self, inputs: list[str] | list[list[int]], *, dimensions: int | None = None
    ) -> EmbeddingResult:
        """One normalized vector per input, in order."""


Engine = TextEngine | ImageEngine | EmbeddingEngine
