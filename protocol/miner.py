"""The validator ⇄ miner wire: OpenAI requests plus the few extensions the checker needs.

Requests: the gateway (and the validator's synthetic traffic) sends miners OpenAI requests, always
streamed for text, always with ``logprobs`` so every generated token comes back with its raw
logprob *and its token id*. Responses are parsed with the strict types below: unknown fields are
an error and every list and string is bounded, because miners are untrusted.

Extensions over OpenAI (all documented in docs/mining.md):

- per choice, ``token_ids``: the ids of the tokens this chunk (or response) carries, aligned with
  ``logprobs.content`` (chat) or ``logprobs.tokens`` (completions);
- ``return_tokens_as_token_ids`` (vLLM's flag) on text requests: token strings become
  ``token_id:<id>``, which is what a forwarding miner asks of vLLM;
- `/v1/images/edits` takes JSON (base64 ``image`` and ``mask``) instead of multipart, so the
  signature covers the whole body;
- `POST /v1/capacity`: ``CapacityRequest`` → ``CapacityResponse``;
- `GET /healthz` (unsigned): ``MinerHealth``, ``degraded`` naming the tasks whose engine cannot
  serve now (a forwarded upstream that does not answer); the validator routes none of them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.openai.chat import ChatCompletionRequest, FinishReason
from protocol.openai.common import MAX_CHOICES, TokenLogprob, Usage
from protocol.openai.completions import CompletionRequest
from protocol.openai.completions import FinishReason as CompletionFinishReason
from protocol.openai.images import ImageEditFields

# Bounds on what one miner event may carry.
MAX_TOKENS_PER_EVENT = 4096
MAX_TEXT_PER_EVENT = 256 * 1024
MAX_IMAGE_B64 = 16 * 1024 * 1024
MAX_EMBEDDING_DIM = 8192
MAX_EMBEDDINGS = 2048
MAX_ID = 128

TokenId = Annotated[int, Meta(ge=0, le=2**31 - 1)]
TokenIds = Annotated[list[TokenId], Meta(max_length=MAX_TOKENS_PER_EVENT)]
ShortStr = Annotated[str, Meta(max_length=MAX_ID)]
ChoiceIndex = Annotated[int, Meta(ge=0, lt=MAX_CHOICES)]

# Receipt: the miner's signature over what it returned (header on JSON responses, a final SSE
# comment `: receipt <hex>` on streams), bound to the request nonce. See ``receipt_payload``.
RECEIPT_HEADER = "X-Sn19-Receipt"
RECEIPT_COMMENT_PREFIX = "receipt "
RECEIPT_VERSION = "sn19-receipt/1"


def receipt_payload(*, nonce: int | str, validator: str, miner: str, body_sha256: str) -> bytes:
    """The bytes a miner signs (sr25519, its hotkey) to vouch for a response::

        sn19-receipt/1\n<request nonce>\n<caller hotkey>\n<miner hotkey>\n<sha256 hex>

    ``nonce`` is the btauth/1 nonce (``X-Bittensor-Nonce``, decimal nanoseconds) of the request
    answered, which binds the receipt to that request; ``body_sha256`` is the lowercase hex
    sha256 of the response body bytes (JSON responses) or of every byte of the stream sent
    before the receipt comment (SSE). The signature travels as lowercase hex (no ``0x``).
    """
    digest = body_sha256.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("body_sha256 must be 64 hex characters")
    nonce_text = str(nonce)
    for name, value in (("nonce", nonce_text), ("validator", validator), ("miner", miner)):
        if not value or "\n" in value:
            raise ValueError(f"{name} must be a non-empty single line")
    return "\n".join((RECEIPT_VERSION, nonce_text, validator, miner, digest)).encode()


class MinerChatRequest(ChatCompletionRequest, forbid_unknown_fields=True, omit_defaults=True):
    return_tokens_as_token_ids: bool | None = None


class MinerCompletionRequest(CompletionRequest, forbid_unknown_fields=True, omit_defaults=True):
    return_tokens_as_token_ids: bool | None = None


class MinerImageEditRequest(ImageEditFields, forbid_unknown_fields=True, omit_defaults=True):
    image: Annotated[str, Meta(min_length=1, max_length=MAX_IMAGE_B64)] = ""
    mask: Annotated[str, Meta(max_length=MAX_IMAGE_B64)] | None = None


# ---------------------------------------------------------------------------------------------
# Strict response types.


class MinerDelta(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: Annotated[str, Meta(max_length=MAX_TEXT_PER_EVENT)] | None = None


class MinerChatLogprobs(msgspec.Struct, forbid_unknown_fields=True):
    content: Annotated[list[TokenLogprob], Meta(max_length=MAX_TOKENS_PER_EVENT)] | None = None
    refusal: None = None


class MinerChatChunkChoice(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    index: ChoiceIndex
    delta: MinerDelta
    logprobs: MinerChatLogprobs | None = None
    finish_reason: FinishReason | None = None
    token_ids: TokenIds | None = None


class MinerChatChunk(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    id: ShortStr
    created: int
    model: ShortStr
    choices: Annotated[list[MinerChatChunkChoice], Meta(max_length=MAX_CHOICES)]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    usage: Usage | None = None
    system_fingerprint: ShortStr | None = None


class MinerCompletionLogprobs(msgspec.Struct, forbid_unknown_fields=True):
    tokens: Annotated[
        list[Annotated[str, Meta(max_length=256)]], Meta(max_length=MAX_TOKENS_PER_EVENT)
    ]
    token_logprobs: Annotated[list[float | None], Meta(max_length=MAX_TOKENS_PER_EVENT)]
    top_logprobs: (
        Annotated[list[dict[str, float] | None], Meta(max_length=MAX_TOKENS_PER_EVENT)] | None
    ) = None
    text_offset: Annotated[list[int], Meta(max_length=MAX_TOKENS_PER_EVENT)] | None = None


class MinerCompletionChoice(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    index: ChoiceIndex
    text: Annotated[str, Meta(max_length=MAX_TEXT_PER_EVENT)]
    logprobs: MinerCompletionLogprobs | None = None
    finish_reason: CompletionFinishReason | None = None
    token_ids: TokenIds | None = None


class MinerCompletionChunk(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    id: ShortStr
    created: int
    model: ShortStr
    choices: Annotated[list[MinerCompletionChoice], Meta(max_length=MAX_CHOICES)]
    object: Literal["text_completion"] = "text_completion"
    usage: Usage | None = None
    system_fingerprint: ShortStr | None = None


class MinerEmbedding(msgspec.Struct, forbid_unknown_fields=True):
    index: Annotated[int, Meta(ge=0, lt=MAX_EMBEDDINGS)]
    embedding: Annotated[list[float], Meta(min_length=1, max_length=MAX_EMBEDDING_DIM)]
    object: Literal["embedding"] = "embedding"


class MinerEmbeddingUsage(msgspec.Struct, forbid_unknown_fields=True):
    prompt_tokens: Annotated[int, Meta(ge=0)]
    total_tokens: Annotated[int, Meta(ge=0)]


class MinerEmbeddingList(msgspec.Struct, forbid_unknown_fields=True):
    data: Annotated[list[MinerEmbedding], Meta(max_length=MAX_EMBEDDINGS)]
    model: ShortStr
    usage: MinerEmbeddingUsage | None = None
    object: Literal["list"] = "list"


class MinerImage(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    b64_json: Annotated[str, Meta(min_length=1, max_length=MAX_IMAGE_B64)]
    revised_prompt: Annotated[str, Meta(max_length=4096)] | None = None


class MinerImagesResponse(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    created: int
    data: Annotated[list[MinerImage], Meta(min_length=1, max_length=10)]
    output_format: Literal["png", "jpeg", "webp"] | None = None
    size: ShortStr | None = None


# ---------------------------------------------------------------------------------------------
# Capacity announcement.


class PublicTask(msgspec.Struct, forbid_unknown_fields=True):
    """What a validator tells miners about a task it scores."""

    id: ShortStr
    kind: Literal["chat", "image", "embedding"]
    model: Annotated[str, Meta(max_length=512)]
    unit: Literal["tokens", "steps"]
    max_capacity: Annotated[float, Meta(ge=0)]
    weight: Annotated[float, Meta(ge=0)]
    volume_per_request: Annotated[float, Meta(gt=0)]


class CapacityRequest(msgspec.Struct, forbid_unknown_fields=True):
    tasks: Annotated[list[PublicTask], Meta(max_length=256)]
    period_seconds: Annotated[float, Meta(gt=0)] = 1800.0


class TaskCapacity(msgspec.Struct, forbid_unknown_fields=True):
    """A miner's offer to one validator for one task for the coming period."""

    volume: Annotated[float, Meta(ge=0)]
    concurrency: Annotated[int, Meta(ge=0, le=100_000)]


class CapacityResponse(msgspec.Struct, forbid_unknown_fields=True):
    capacities: Annotated[dict[ShortStr, TaskCapacity], Meta(max_length=256)]
    miner_version: ShortStr | None = None


class MinerHealth(msgspec.Struct):
    """``GET /healthz``: ``status`` is ``ok``, or ``degraded`` when ``degraded`` names tasks.
    Unknown fields are ignored (a liveness answer may grow)."""

    status: ShortStr
    hotkey: ShortStr = ""
    tasks: Annotated[list[ShortStr], Meta(max_length=256)] = []
    degraded: Annotated[list[ShortStr], Meta(max_length=256)] = []
