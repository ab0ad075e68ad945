"""Check jobs: one miner result to verify (SPEC §5), as the gateway and the synthetic sender
enqueue it and the checker reads it.

A job holds the request exactly as the miner was sent it (its JSON), what the miner delivered
(token ids with raw logprobs and finish reasons; decoded image bytes; vectors), who served it,
when, and how long it took. Jobs travel msgpack-encoded (image bytes stay binary).

The checker decodes a job in two steps (``decode_envelope`` then ``decode_response``) so that a
response that breaks the limits below is still attributed to its miner and scored 0 with a
reason instead of being dropped: the envelope (ids, miner, timings) is small and strict, the
response is checked against ``RESPONSE_LIMITS``.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from core.miners.receipts import Receipt
from protocol.miner import MinerEmbeddingList, MinerImagesResponse
from protocol.records import TextOutput

JOB_VERSION = 1

# What one job's response may hold (the checker refuses more with a reason).
MAX_CHOICES = 16
MAX_TOKENS_PER_CHOICE = 1 << 16
MAX_TEXT_CHARS = 4 * 1024 * 1024
MAX_IMAGES = 10
MAX_IMAGE_BYTES = 12 * 1024 * 1024  # 16 MiB of base64, decoded
MAX_VECTORS = 2048
MAX_DIMENSIONS = 8192
MAX_VECTOR_FLOATS = 1 << 22
MAX_REQUEST_BYTES = 64 * 1024 * 1024

JobKind = Literal["chat", "completion", "image", "image_edit", "embedding"]
KINDS: tuple[str, ...] = ("chat", "completion", "image", "image_edit", "embedding")
Hotkey = Annotated[str, Meta(min_length=1, max_length=64)]
ShortText = Annotated[str, Meta(max_length=256)]


class MinerInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    hotkey: Hotkey
    uid: int = -1


class JobTimings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    started: float  # wall clock (time.time()) when the request arrived
    total_s: float  # request start to the end of the response
    ttft_s: float | None = None
    attempts: int = 1


class TextChoice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: Annotated[int, Meta(ge=0, lt=MAX_CHOICES)]
    token_ids: Annotated[list[int], Meta(max_length=MAX_TOKENS_PER_CHOICE)] = []
    logprobs: Annotated[list[float], Meta(max_length=MAX_TOKENS_PER_CHOICE)] = []
    text: Annotated[str, Meta(max_length=MAX_TEXT_CHARS)] = ""
    finish_reason: ShortText | None = None


class TextResponse(msgspec.Struct, frozen=True, tag="text", forbid_unknown_fields=True):
    """Token ids, the raw (temperature-1) logprobs the miner reported, the text the customer
    was sent, and the finish reason, per choice."""

    choices: Annotated[list[TextChoice], Meta(max_length=MAX_CHOICES)]


class ImageResponse(msgspec.Struct, frozen=True, tag="image", forbid_unknown_fields=True):
    """The encoded images exactly as delivered (base64-decoded, not re-encoded)."""

    images: Annotated[
        list[Annotated[bytes, Meta(max_length=MAX_IMAGE_BYTES)]], Meta(max_length=MAX_IMAGES)
    ]
    output_format: ShortText | None = None


class EmbeddingResponse(msgspec.Struct, frozen=True, tag="embedding", forbid_unknown_fields=True):
    """Vectors in the miner's order, with the ``index`` each one claimed."""

    indexes: Annotated[list[int], Meta(max_length=MAX_VECTORS)]
    vectors: Annotated[
        list[Annotated[list[float], Meta(max_length=MAX_DIMENSIONS)]], Meta(max_length=MAX_VECTORS)
    ]


class MissingResponse(msgspec.Struct, frozen=True, tag="missing", forbid_unknown_fields=True):
    """Nothing checkable arrived (or it was over the queue's size limit): scored 0."""

    reason: Annotated[str, Meta(max_length=1024)]


Response = TextResponse | ImageResponse | EmbeddingResponse | MissingResponse


class CheckJob(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    job_id: Annotated[str, Meta(min_length=1, max_length=128)]
    task: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: JobKind
    organic: bool
    # The request the miner was sent, as JSON (the protocol Struct encoded): MinerChatRequest,
    # MinerCompletionRequest, ImageGenerationRequest, MinerImageEditRequest or EmbeddingRequest.
    request: Annotated[bytes, Meta(max_length=MAX_REQUEST_BYTES)]
    response: Response
    miner: MinerInfo
    timings: JobTimings
    receipt: Annotated[str, Meta(max_length=4096)] | None = None
    request_id: Annotated[str, Meta(max_length=256)] = ""
    created_at: float = 0.0
    version: int = JOB_VERSION


class JobEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A job with its response left undecoded: what the checker reads first."""

    job_id: Annotated[str, Meta(min_length=1, max_length=128)]
    task: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: JobKind
    organic: bool
    miner: MinerInfo
    timings: JobTimings
    request: bytes = b""
    response: msgspec.Raw = msgspec.Raw(b"")
    receipt: str | None = None
    request_id: str = ""
    created_at: float = 0.0
    version: int = JOB_VERSION


_ENCODER = msgspec.msgpack.Encoder()
_ENVELOPE = msgspec.msgpack.Decoder(JobEnvelope)
_RESPONSE = msgspec.msgpack.Decoder(Response)
_JOB = msgspec.msgpack.Decoder(CheckJob)


class JobDecodeError(ValueError):
    """A job (or its response) could not be decoded within the limits."""


def encode_job(job: CheckJob) -> bytes:
    return _ENCODER.encode(job)


def decode_job(data: bytes) -> CheckJob:
    try:
        return _JOB.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise JobDecodeError(str(exc)) from exc


def decode_envelope(data: bytes) -> JobEnvelope:
    try:
        return _ENVELOPE.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise JobDecodeError(str(exc)) from exc


def decode_response(envelope: JobEnvelope) -> Response:
    try:
        response: Response = _RESPONSE.decode(envelope.response)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise JobDecodeError(str(exc)) from exc
    if (
        isinstance(response, EmbeddingResponse)
        and sum(len(vector) for vector in response.vectors) > MAX_VECTOR_FLOATS
    ):
        raise JobDecodeError(f"more than {MAX_VECTOR_FLOATS} floats in the vectors")
    return response


# ---------------------------------------------------------------------------------------------
# Building jobs from what the gateway (or the synthetic sender) has at hand.


def response_of(kind: str, result: Any) -> Response:
    """The job response for a delivered result: a ``TextOutput`` (chat, completion), a
    ``MinerImagesResponse`` (images: base64 decoded here) or a ``MinerEmbeddingList``."""
    if result is None:
        return MissingResponse(reason="the miner delivered nothing")
    if isinstance(result, TextOutput):
        return TextResponse(
            choices=[
                TextChoice(
                    index=choice.index,
                    token_ids=list(choice.token_ids),
                    logprobs=list(choice.logprobs),
                    text=choice.text,
                    finish_reason=choice.finish_reason,
                )
                for choice in result.choices
            ]
        )
    if isinstance(result, MinerImagesResponse):
        images: list[bytes] = []
        for item in result.data:
            try:
                images.append(base64.b64decode(item.b64_json, validate=True))
            except (binascii.Error, ValueError):
                images.append(b"")  # the checker scores undecodable bytes 0
        return ImageResponse(images=images, output_format=result.output_format)
    if isinstance(result, MinerEmbeddingList):
        return EmbeddingResponse(
            indexes=[item.index for item in result.data],
            vectors=[list(item.embedding) for item in result.data],
        )
    if isinstance(result, TextResponse | ImageResponse | EmbeddingResponse | MissingResponse):
        return result
    return MissingResponse(reason=f"unsupported result type for a {kind} job")


def make_job(
    *,
    task: str,
    kind: JobKind,
    organic: bool,
    request: msgspec.Struct | bytes,
    result: Any,
    hotkey: str,
    uid: int,
    timings: JobTimings,
    receipt: Receipt | str | None = None,
    request_id: str = "",
    job_id: str | None = None,
) -> CheckJob:
    """A job for one delivered result. ``request`` is the protocol request Struct sent to the
    miner (or its JSON); ``result`` what came back (see ``response_of``); ``receipt`` the
    dispatch's ``Receipt`` (verified here if it was not yet, stored as its record) or a record."""
    body = request if isinstance(request, bytes) else msgspec.json.encode(request)
    return CheckJob(
        job_id=job_id or uuid.uuid4().hex,
        task=task,
        kind=kind,
        organic=organic,
        request=body,
        response=response_of(kind, result),
        miner=MinerInfo(hotkey=hotkey, uid=uid),
        timings=timings,
        receipt=receipt.record() if isinstance(receipt, Receipt) else receipt,
        request_id=request_id,
        created_at=time.time(),
    )
