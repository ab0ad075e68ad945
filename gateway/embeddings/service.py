"""Embeddings: validate the inputs against the task's limits, ask a miner for float vectors,
check them, and answer in the encoding the client asked for.

The openai SDK sends ``encoding_format: "base64"`` unless told otherwise and decodes a
little-endian float32 buffer; miners are always asked for floats and the conversion happens
here. ``usage.prompt_tokens`` is the gateway's own count with the task's tokenizer.
"""

from __future__ import annotations

import msgspec

from billing import Usage, estimate_embedding
from core.errors import InvalidRequest
from core.miners.requests import check_vectors, count_embedding_inputs, miner_embeddings
from gateway.context import RequestContext
from gateway.events import ENCODER
from gateway.exchange import Exchange
from gateway.http import JSONResponse, json_response
from gateway.validation import shaped
from protocol.catalog import Task
from protocol.miner import MinerEmbeddingList
from protocol.openai.embeddings import (
    Embedding,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    encode_base64_floats,
)
from protocol.openai.shapes import ShapeError, inputs_of

REQUEST = msgspec.json.Decoder(EmbeddingRequest)
RESPONSE = msgspec.json.Decoder(MinerEmbeddingList)
MINER_PATH = "/v1/embeddings"

Inputs = list[str] | list[list[int]]


def answer_bytes(count: int, dimensions: int) -> int:
    """The most a miner's JSON answer may take: 2,048 vectors of 1,024 floats is ~45 MB, more
    than the miner client's default limit."""
    return count * (dimensions * 26 + 64) + 65_536


async def serve_embeddings(
    ctx: RequestContext, task: Task, request: EmbeddingRequest
) -> JSONResponse:
    spec = task.embedding
    assert spec is not None
    if request.dimensions is not None and request.dimensions > spec.dimensions:
        raise InvalidRequest(
            f"dimensions must be at most {spec.dimensions} for this model.", param="dimensions"
        )
    try:
        inputs = inputs_of(request.input)
    except ShapeError as exc:
        raise shaped(exc) from None
    tokens = count_embedding_inputs(spec, inputs, ctx.gateway.counters[task.id])
    dimensions = request.dimensions or spec.dimensions
    miner_request = miner_embeddings(task, inputs, request.dimensions)

    async def check(result: MinerEmbeddingList) -> None:
        check_vectors(result, len(inputs), dimensions)

    exchange = Exchange(
        ctx,
        task,
        kind="embedding",
        estimate=estimate_embedding(tokens),
        miner_request=miner_request,
    )
    async with exchange:
        delivered = await exchange.call(
            MINER_PATH,
            ENCODER.encode(miner_request),
            decode=RESPONSE.decode,
            check=check,
            units=lambda _: float(tokens),
            max_bytes=answer_bytes(len(inputs), dimensions),
        )
        base64 = request.encoding_format == "base64"
        vectors = sorted(delivered.value.data, key=lambda item: item.index)
        body = ENCODER.encode(
            EmbeddingList(
                data=[
                    Embedding(
                        index=item.index,
                        embedding=encode_base64_floats(item.embedding)
                        if base64
                        else item.embedding,
                    )
                    for item in vectors
                ],
                model=task.id,
                usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
            )
        )
        exchange.complete(
            Usage(input_tokens=tokens),
            result=delivered.value,
            receipt=delivered.receipt,
            attempt=delivered.attempt,
            volume=float(tokens),
        )
    return json_response(body, headers=exchange.response_headers())
