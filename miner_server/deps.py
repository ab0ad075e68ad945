"""Typed dependencies handed to route handlers: the app's ``MinerState`` and, on signed
routes, the verified request (``Signed``: caller hotkey plus the raw body)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request
from litestar.di import Provide
from litestar.params import Dependency
from litestar.types import Receive

from miner_server.auth import Signed
from miner_server.errors import BodyTooLarge, ClientClosed, from_validation_error
from miner_server.state import MinerState

D = TypeVar("D")

# Handler parameter types. App objects are handed over as they are (no per-request validation).
Miner = Annotated[MinerState, Dependency(skip_validation=True)]
SignedRequest = Annotated[Signed, Dependency(skip_validation=True)]


async def provide_signed(request: Request[Any, Any, Any], miner: Miner) -> Signed:
    """Read the raw body (413 beyond the limit), verify its btauth/1 signature (401), then pass
    the stake gate (403 unregistered or under the minimum stake; 503 before the metagraph is
    known), which gives the caller its stake share."""
    body = await read_body(request.scope, request.receive, miner.max_body_bytes)
    caller = miner.verifier.verify(request.scope, body)
    share = miner.gate.admit(caller.hotkey)
    return Signed(caller=msgspec.structs.replace(caller, share=share), body=body)


async def read_body(scope: Any, receive: Receive, limit: int) -> bytes:
    """The raw request body, refused with 413 past `limit` bytes (announced or received).

    Read straight from the ASGI channel: the bytes the signature covers, with no header
    parsing beyond ``content-length``."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientClosed("Client closed the request while sending it.")
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def dependencies(state: MinerState) -> dict[str, Provide]:
    def provide_miner() -> MinerState:
        return state

    return {
        "miner": Provide(provide_miner, use_cache=True, sync_to_thread=False),
        "signed": Provide(provide_signed),
    }


def decode(decoder: msgspec.json.Decoder[D], body: bytes) -> D:
    """Decode a request body strictly; a bad field is a 400 naming it."""
    try:
        return decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise from_validation_error(exc) from None
