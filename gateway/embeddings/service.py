"""Embeddings: validate the inputs against the task's limits, ask a miner for float vectors,
check them, and answer in the encoding the client asked for.

The openai SDK sends ``encoding_format: "base64"`` unless told otherwise and decodes a
little-endian float32 buffer; miners are always asked for floats and the conversion happens
here. ``usage.prompt_tokens`` is the gateway's own count with the task's tokenizer.
"""

from __future__ import annotations

import asyncio

import msgspec

from core.errors import InvalidRequest
from core.miners import DispatchState
from core.miners.requests import check_vectors, miner_embeddings
from gateway.accounting import CostEstimate, DeliveredUsage
from gateway.context import RequestContext
from gateway.http import JSONResponse, json_response
from gateway.pipeline import (
    attempts_done,
    dispatch_state,
    finish_json,
    release,
    release_later,
    settle,
)
from gateway.relay import ENCODER
from gateway.validation import shaped
from protocol.catalog import EmbeddingSpec, Task
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


def count_inputs(ctx: RequestContext, task: Task, spec: EmbeddingSpec, inputs: Inputs) -> int:
    if len(inputs) > spec.max_inputs:
        raise InvalidRequest(
            f"At most {spec.max_inputs} inputs per request for this model.", param="input"
        )
    counter = ctx.gateway.counter(task.id)
    total = 0
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            tokens = counter.embedding_input(item)
            exact = counter.exact
        else:
            tokens, exact = len(item), True
        if exact and tokens > spec.max_input_tokens:
            raise InvalidRequest(
                f"input[{index}] is {tokens} tokens; this model accepts at most "
                f"{spec.max_input_tokens}.",
                param=f"input[{index}]",
                code="context_length_exceeded",
            )
        total += tokens
    return total


async def serve_embeddings(
    ctx: RequestContext, task: Task, request: EmbeddingRequest
) -> JSONResponse:
    gw = ctx.gateway
    spec = task.embedding
    assert spec is not None and ctx.caller is not None
    if request.dimensions is not None and request.dimensions > spec.dimensions:
        raise InvalidRequest(
            f"dimensions must be at most {spec.dimensions} for this model.", param="dimensions"
        )
    try:
        inputs = inputs_of(request.input)
    except ShapeError as exc:
        raise shaped(exc) from None
    tokens = count_inputs(ctx, task, spec, inputs)
    dimensions = request.dimensions or spec.dimensions
    miner_request = miner_embeddings(task, inputs, request.dimensions)
    hold = await gw.accounting.admit(
        ctx.caller, task, CostEstimate(input_tokens=tokens), request_id=ctx.request_id
    )

    async def check(result: MinerEmbeddingList) -> None:
        check_vectors(result, len(inputs), dimensions)

    state: DispatchState | None = None
    try:
        state = await dispatch_state(ctx, task)
        delivered = await gw.dispatcher.call(
            state,
            MINER_PATH,
            ENCODER.encode(miner_request),
            decode=RESPONSE.decode,
            check=check,
            units=lambda _: float(tokens),
        )
    except asyncio.CancelledError:
        release_later(ctx, hold)
        raise
    except Exception as exc:
        if state is not None:
            attempts_done(ctx, task, state)
        await release(ctx, hold, exc)
        raise
    base64 = request.encoding_format == "base64"
    vectors = sorted(delivered.value.data, key=lambda item: item.index)
    body = ENCODER.encode(
        EmbeddingList(
            data=[
                Embedding(
                    index=item.index,
                    embedding=encode_base64_floats(item.embedding) if base64 else item.embedding,
                )
                for item in vectors
            ],
            model=task.id,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )
    )
    charged = await settle(
        ctx, hold, DeliveredUsage(input_tokens=tokens), outcome="ok", attempt=delivered.attempt
    )
    finish_json(
        ctx,
        task,
        state,
        kind="embedding",
        miner_request=miner_request,
        result=delivered.value,
        receipt=delivered.receipt,
        volume=float(tokens),
    )
    gw.metrics.add(gw.metrics.prompt_tokens, tokens, task.id)
    return json_response(
        body, headers={**hold.headers, **charged, "x-sn19-attempts": str(len(state.attempts))}
    )
