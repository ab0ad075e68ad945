"""``POST /v1/embeddings`` (signed): one vector per input, floats by default, OpenAI's base64
(little-endian float32) when ``encoding_format: base64`` is asked for."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.types import ASGIApp

from miner_server.deps import Miner, SignedRequest, decode
from miner_server.errors import InvalidRequest, engine_errors
from miner_server.render import ENCODER
from miner_server.wire import EmbeddingBody, embedding_inputs
from protocol.miner import MinerEmbedding, MinerEmbeddingList, MinerEmbeddingUsage
from protocol.openai.embeddings import (
    Embedding,
    EmbeddingList,
    EmbeddingUsage,
    encode_base64_floats,
)

_REQUEST = msgspec.json.Decoder(EmbeddingBody)


@post("/v1/embeddings", status_code=200)
async def embeddings(miner: Miner, signed: SignedRequest) -> ASGIApp:
    body = decode(_REQUEST, signed.body)
    served = miner.embedding_task(body.model)
    inputs = embedding_inputs(body.input)
    assert served.task.embedding is not None
    limit = served.task.embedding.max_inputs
    if len(inputs) > limit:
        raise InvalidRequest(f"input: at most {limit} inputs per request.", param="input")
    slot = served.limiter.acquire(signed.caller)
    try:
        with engine_errors(param="input"):
            result = await served.engine.embed(inputs, dimensions=body.dimensions)
    finally:
        slot.release()
    tokens = result.prompt_tokens
    if body.encoding_format == "base64":
        encoded = EmbeddingList(
            data=[
                Embedding(index=index, embedding=encode_base64_floats(vector))
                for index, vector in enumerate(result.vectors)
            ],
            model=body.model,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )
        return miner.json(signed.caller, ENCODER.encode(encoded))
    floats = MinerEmbeddingList(
        data=[
            MinerEmbedding(index=index, embedding=vector)
            for index, vector in enumerate(result.vectors)
        ],
        model=body.model,
        usage=MinerEmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
    return miner.json(signed.caller, ENCODER.encode(floats))
