"""`/v1/embeddings`: request and response (float arrays or base64 little-endian float32)."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.openai.chat import ModelName
from protocol.openai.shapes import LooseTexts

# A string, a list of strings, token ids or token-id lists; `protocol.openai.shapes.inputs_of`
# checks which and returns a list of texts or of token-id lists.
EmbeddingInput = LooseTexts


class EmbeddingRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: ModelName
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Meta(ge=1, le=65_536)] | None = None
    user: Annotated[str, Meta(max_length=512)] | None = None


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str
    object: Literal["embedding"] = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: Literal["list"] = "list"


def encode_base64_floats(vector: list[float]) -> str:
    """Encode a vector as OpenAI does for ``encoding_format=base64``: little-endian float32."""
    import array
    import sys

    buf = array.array("f", vector)
    if sys.byteorder != "little":
        buf.byteswap()
    return base64.b64encode(buf.tobytes()).decode("ascii")


def decode_base64_floats(data: str) -> list[float]:
    import array
    import sys

    buf = array.array("f")
    buf.frombytes(base64.b64decode(data))
    if sys.byteorder != "little":
        buf.byteswap()
    return buf.tolist()
