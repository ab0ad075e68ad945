"""``POST /v1/capacity`` (signed): the validator's public task list in, this miner's offer per
task it serves out (see ``miner_server.capacity``)."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.types import ASGIApp

from miner_server.deps import Miner, SignedRequest, decode
from miner_server.render import ENCODER
from protocol.miner import CapacityRequest

_REQUEST = msgspec.json.Decoder(CapacityRequest)


@post("/v1/capacity", status_code=200)
async def capacity(miner: Miner, signed: SignedRequest) -> ASGIApp:
    request = decode(_REQUEST, signed.body)
    return miner.json(signed.caller, ENCODER.encode(miner.capacity.offer(signed.caller, request)))
