"""Check jobs and the check queue (SPEC §5): what the gateway and the synthetic sender enqueue,
and what checker workers consume.

Producers::

    job = make_job(task=..., kind="chat", organic=False, request=miner_request,
                   result=text_output, hotkey=..., uid=..., timings=JobTimings(...))
    await CheckQueue(redis, prefix=settings.redis.key_prefix).enqueue(job)

The checker owns the consumer side (``read``/``reclaim``/``touch``/``ack``/``dead_letter``).
"""

from core.checks.jobs import (
    KINDS,
    MAX_CHOICES,
    MAX_DIMENSIONS,
    MAX_IMAGE_BYTES,
    MAX_IMAGES,
    MAX_TOKENS_PER_CHOICE,
    MAX_VECTORS,
    CheckJob,
    EmbeddingResponse,
    ImageResponse,
    JobDecodeError,
    JobEnvelope,
    JobKind,
    JobTimings,
    MinerInfo,
    MissingResponse,
    Response,
    TextChoice,
    TextResponse,
    decode_envelope,
    decode_job,
    decode_response,
    encode_job,
    make_job,
    response_of,
)
from core.checks.queue import CheckQueue, Delivery, QueueDepth

__all__ = [
    "KINDS",
    "MAX_CHOICES",
    "MAX_DIMENSIONS",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_TOKENS_PER_CHOICE",
    "MAX_VECTORS",
    "CheckJob",
    "CheckQueue",
    "Delivery",
    "EmbeddingResponse",
    "ImageResponse",
    "JobDecodeError",
    "JobEnvelope",
    "JobKind",
    "JobTimings",
    "MinerInfo",
    "MissingResponse",
    "QueueDepth",
    "Response",
    "TextChoice",
    "TextResponse",
    "decode_envelope",
    "decode_job",
    "decode_response",
    "encode_job",
    "make_job",
    "response_of",
]
