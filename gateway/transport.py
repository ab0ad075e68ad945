"""What HTTP does around the API's handlers on ``/v1/*``: CORS for browser apps, and gzip both
ways. ``/dashboard`` (cookies, forms) never gets either.

- **CORS** (``gateway.cors_origins``, default any origin: keys are bearer tokens, no cookie is
  read): a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is
  answered 204 here with the allowed methods, the requested headers (``authorization``
  included) and a ``max-age``; other responses to an allowed ``Origin`` carry
  ``Access-Control-Allow-Origin`` and expose the headers clients read (request id, rate
  limits, processing time). An origin not on the list gets no CORS headers, so the browser
  blocks it.
- **gzip responses** for clients that send ``Accept-Encoding: gzip`` (the openai SDKs do):
  a JSON body of at least ``gateway.gzip_min_bytes`` sent in one message is compressed (level
  5, a fraction of a millisecond for a 1 MB embeddings answer); event streams are never
  buffered or compressed.
- **gzip requests**: a body with ``Content-Encoding: gzip`` is decompressed before the handler
  reads it, bounded by ``gateway.max_body_bytes`` after decompression (413 beyond it, 400 if it
  is not gzip), so a small compressed body cannot expand without limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AppError, InvalidRequest, PayloadTooLarge
from gateway.errors import error_response

ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
EXPOSE_HEADERS = (
    b"x-request-id, openai-processing-ms, openai-model, retry-after, "
    b"x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, "
    b"x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens"
)
MAX_AGE = b"600"
GZIP_LEVEL = 5


class Transport:
    """An ASGI middleware; ``wrap`` is what Litestar's ``middleware=`` takes."""

    def __init__(self, *, origins: Sequence[str], gzip_min_bytes: int, max_body_bytes: int) -> None:
        self.any_origin = "*" in origins
        self.origins = frozenset(origin.rstrip("/").encode() for origin in origins)
        self.gzip_min_bytes = gzip_min_bytes
        self.max_body_bytes = max_body_bytes

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or not scope["path"].startswith("/v1/"):
                await app(scope, receive, send)
                return
            await self.handle(app, scope, receive, send)

        return middleware

    def _allowed(self, origin: bytes | None) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for this origin, or None."""
        if origin is None or not (self.any_origin or self.origins):
            return None
        if self.any_origin:
            return b"*"
        return origin if origin.rstrip(b"/") in self.origins else None

    async def handle(self, app: ASGIApp, scope: Any, receive: Receive, send: Send) -> None:
        origin = accept = encoding = request_method = request_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"accept-encoding":
                accept = value
            elif name == b"content-encoding":
                encoding = value
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                request_headers = value
        allow = self._allowed(origin)
        if scope["method"] == "OPTIONS" and origin is not None and request_method is not None:
            await self._preflight(send, allow, request_headers)
            return
        if encoding is not None and encoding.strip().lower() != b"identity":
            try:
                scope, receive = await self._inflate(scope, receive, encoding)
            except AppError as error:
                await error_response(None, error)(scope, receive, send)
                return
        gzip_ok = self.gzip_min_bytes > 0 and accept is not None and b"gzip" in accept.lower()
        if allow is None and not gzip_ok:
            await app(scope, receive, send)
            return
        await app(scope, receive, self._sender(send, allow, gzip_ok))

    async def _preflight(self, send: Send, allow: bytes | None, requested: bytes | None) -> None:
        headers = [(b"content-length", b"0"), (b"vary", b"origin")]
        if allow is not None:
            headers += [
                (b"access-control-allow-origin", allow),
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", requested or b"authorization, content-type"),
                (b"access-control-max-age", MAX_AGE),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _inflate(self, scope: Any, receive: Receive, encoding: bytes) -> tuple[Any, Any]:
        if encoding.strip().lower() not in (b"gzip", b"x-gzip"):
            raise InvalidRequest(
                "Content-Encoding must be gzip or identity.",
                param="content-encoding",
                code="unsupported_content_encoding",
            )
        inflater = zlib.decompressobj(wbits=31)
        parts: list[bytes] = []
        size = 0
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                more = message.get("more_body", False)
                chunk = inflater.decompress(
                    message.get("body", b""), self.max_body_bytes + 1 - size
                )
                size += len(chunk)
                parts.append(chunk)
                if size > self.max_body_bytes or inflater.unconsumed_tail:
                    raise PayloadTooLarge(
                        f"The decompressed request body is larger than {self.max_body_bytes} bytes."
                    )
            if not inflater.eof:
                raise zlib.error("truncated")
        except zlib.error:
            raise InvalidRequest(
                "The request body is not valid gzip.", code="invalid_content_encoding"
            ) from None
        body = b"".join(parts)
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"content-encoding", b"content-length")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return {**scope, "headers": headers}, replay

    def _sender(self, send: Send, allow: bytes | None, gzip_ok: bool) -> Send:
        minimum = self.gzip_min_bytes
        held: dict[str, Any] | None = None

        async def sender(message: Message) -> None:
            nonlocal held
            event: dict[str, Any] = message  # type: ignore[assignment]
            kind = event["type"]
            if kind == "http.response.start":
                headers = list(event.get("headers", ()))
                if allow is not None:
                    headers.append((b"access-control-allow-origin", allow))
                    headers.append((b"access-control-expose-headers", EXPOSE_HEADERS))
                    headers.append((b"vary", b"origin"))
                start = {**event, "headers": headers}
                if gzip_ok and _compressible(headers, minimum):
                    held = start  # decided on the first body message
                    return
                await send(start)  # type: ignore[arg-type]
                return
            if kind == "http.response.body" and held is not None:
                start, held = held, None
                body: bytes = event.get("body", b"")
                if event.get("more_body", False) or len(body) < minimum:
                    await send(start)  # type: ignore[arg-type]
                    await send(message)
                    return
                packed = zlib.compress(body, GZIP_LEVEL, wbits=31)
                headers = [(n, v) for n, v in start["headers"] if n != b"content-length"]
                headers += [
                    (b"content-encoding", b"gzip"),
                    (b"content-length", str(len(packed)).encode()),
                    (b"vary", b"accept-encoding"),
                ]
                await send({**start, "headers": headers})  # type: ignore[arg-type]
                await send({"type": "http.response.body", "body": packed, "more_body": False})
                return
            await send(message)

        return sender


def _compressible(headers: list[tuple[bytes, bytes]], minimum: int) -> bool:
    """A JSON body, not already encoded, whose declared length reaches ``minimum``."""
    json = False
    length = -1
    for name, value in headers:
        if name == b"content-type":
            json = value.startswith(b"application/json")
        elif name == b"content-encoding":
            return False
        elif name == b"content-length":
            length = int(value)
    return json and length >= minimum
