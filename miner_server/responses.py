"""Responses on the hot path, as bare ASGI callables (handlers return them as ``ASGIApp``), and
the one exception handler that renders every error as the OpenAI envelope.

Bodies are encoded once by msgspec and written as they are: no response class machinery, no
re-encoding. ``EventStream`` writes SSE and always runs its cleanup (release the concurrency
slot, stop the engine), whether the stream ends, fails, or the client goes away.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from miner_server.errors import BodyTooLarge, EngineFailure, InvalidRequest, MinerError
from miner_server.ratelog import RepeatedFailures, failure_kind
from miner_server.receipts import StreamTrailer
from protocol.miner import RECEIPT_HEADER

logger = logging.getLogger(__name__)
_FAILURES = RepeatedFailures(logger)

_JSON = (b"content-type", b"application/json")
_RECEIPT = RECEIPT_HEADER.lower().encode("ascii")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class JSONBytes:
    """An already-encoded JSON body, with the miner's receipt header when one is given."""

    __slots__ = ("body", "receipt", "status")

    def __init__(self, body: bytes, status: int = 200, *, receipt: str | None = None) -> None:
        self.body = body
        self.status = status
        self.receipt = receipt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [_JSON, (b"content-length", str(len(self.body)).encode())]
        if self.receipt is not None:
            headers.append((_RECEIPT, self.receipt.encode("ascii")))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class EventStream:
    """``text/event-stream`` from an async iterator of ready-made SSE bytes. With a
    ``trailer``, every byte sent is hashed and the stream ends with the receipt comment."""

    __slots__ = ("_chunks", "_cleanup", "_trailer")

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        cleanup: Callable[[], None],
        trailer: StreamTrailer | None = None,
    ) -> None:
        self._chunks = chunks
        self._cleanup = cleanup
        self._trailer = trailer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = self._chunks
        trailer = self._trailer
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            async for chunk in chunks:
                if trailer is not None:
                    trailer.update(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            last = trailer.comment() if trailer is not None else b""
            await send({"type": "http.response.body", "body": last, "more_body": False})
        except OSError:
            logger.debug("client went away during a stream")
        finally:
            self._cleanup()
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The one renderer of errors: every failure leaves as ``{"error": {...}}``. A 5xx is
    logged: an engine's failure (an upstream down) as one line per kind per 30 s
    (``miner_server.ratelog``), anything else with its traceback."""
    error = as_miner_error(exc)
    if isinstance(error, EngineFailure):
        where = f"{request.method} {request.url.path}"
        log_engine_failure(where, error)
    elif error.status_code >= 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return Response(
        content=error.body(),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers,
    )


def log_engine_failure(where: str, error: BaseException) -> None:
    _FAILURES.report(failure_kind(where, error), f"{where} failed: {error}")


def as_miner_error(exc: Exception) -> MinerError:
    if isinstance(exc, MinerError):
        return exc
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 413:
            return BodyTooLarge("Request body is larger than this miner accepts.")
        if 400 <= status < 500:
            code = {404: "not_found", 405: "method_not_allowed"}.get(status)
            return InvalidRequest(str(exc.detail), code=code, status_code=status)
    return MinerError("Internal error while serving the request.")
