"""One job → the right check: decode the request the miner was sent, rebuild the engine request
exactly as the miner did (``inference.requests``), and run the check for the job's kind.

Anything wrong with the job itself (a response over the limits or of the wrong kind, a request
that does not decode or that no miner should have served) scores 0 with the reason; nothing here
raises for bad input.
"""

from __future__ import annotations

from typing import Any

import msgspec

from checker.embedding import check_embedding
from checker.image import check_image
from checker.outcome import BAD_JOB, BAD_REQUEST, MISSING_RESPONSE, CheckOutcome, failed
from checker.text import check_text
from core.checks import (
    EmbeddingResponse,
    ImageResponse,
    JobDecodeError,
    JobEnvelope,
    MissingResponse,
    TextResponse,
    decode_response,
)
from inference import requests as mapping
from inference.base import TextRequest
from protocol.catalog import Task
from protocol.miner import MinerChatRequest, MinerCompletionRequest, MinerImageEditRequest
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.images import ImageGenerationRequest
from protocol.openai.shapes import ShapeError, inputs_of

TASK_KIND = {
    "chat": "chat",
    "completion": "chat",
    "image": "image",
    "image_edit": "image",
    "embedding": "embedding",
}
_RESPONSE_TYPE: dict[str, type] = {
    "chat": TextResponse,
    "image": ImageResponse,
    "embedding": EmbeddingResponse,
}
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "chat": msgspec.json.Decoder(MinerChatRequest),
    "completion": msgspec.json.Decoder(MinerCompletionRequest),
    "image": msgspec.json.Decoder(ImageGenerationRequest),
    "image_edit": msgspec.json.Decoder(MinerImageEditRequest),
    "embedding": msgspec.json.Decoder(EmbeddingRequest),
}


async def run_check(envelope: JobEnvelope, task: Task, engine: Any) -> CheckOutcome:
    """The outcome of one job on ``engine`` (the task's reference engine, started)."""
    if TASK_KIND[envelope.kind] != task.kind:
        return failed(BAD_JOB, f"a {envelope.kind} job for the {task.kind} task {task.id}")
    try:
        response = decode_response(envelope)
    except JobDecodeError as exc:
        return failed(BAD_JOB, f"the response is malformed or over the limits: {exc}"[:2000])
    if isinstance(response, MissingResponse):
        return failed(MISSING_RESPONSE, response.reason)
    if not isinstance(response, _RESPONSE_TYPE[task.kind]):
        return failed(BAD_JOB, f"a {type(response).__name__} for a {envelope.kind} job")
    try:
        body = _DECODERS[envelope.kind].decode(envelope.request)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return failed(BAD_REQUEST, f"the request does not decode: {exc}"[:2000])
    try:
        return await _check(envelope.kind, body, response, task, engine)
    except mapping.RequestRefused as exc:
        return failed(BAD_REQUEST, f"no miner should have served this request: {exc}")
    except ShapeError as exc:
        return failed(BAD_REQUEST, f"the request's {exc.param} is malformed: {exc}")


async def _check(kind: str, body: Any, response: Any, task: Task, engine: Any) -> CheckOutcome:
    spec = task.check
    if kind in ("chat", "completion"):
        assert task.text is not None

        def count(request: TextRequest) -> int:
            return len(engine.prompt_ids(request))

        if kind == "chat":
            request = mapping.chat_text_request(body, task.text, count)
        else:
            request = mapping.completion_text_request(body, task.text, count)
        return await check_text(request, response, engine, spec)
    if kind in ("image", "image_edit"):
        assert task.image is not None
        image = mapping.image_request(body, task.image)
        return await check_image(image, response, engine, spec)
    assert task.embedding is not None
    if body.dimensions is not None and body.dimensions > task.embedding.dimensions:
        raise mapping.RequestRefused(
            f"dimensions {body.dimensions} > {task.embedding.dimensions}", param="dimensions"
        )
    inputs = inputs_of(body.input)
    return await check_embedding(inputs, body.dimensions, response, engine, spec)
