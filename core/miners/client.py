"""The HTTP client for validator → miner calls, behind a small interface so it can be swapped.

``MinerClient`` signs every call (a fresh btauth/1 nonce per attempt) and returns either a whole
response (``post``, size-capped) or an open event stream (``open_stream``) whose events are read
with a per-read timeout and a total size cap. ``MinerStream.close()`` is synchronous and
idempotent, so it is safe in ``finally`` blocks of cancelled tasks: it drops the connection, which
is how a miner learns that the client went away and stops generating.

``AiohttpMinerClient`` is the implementation: one ``aiohttp.ClientSession`` over a
``TCPConnector`` with a high connection limit and keep-alive (measured in
``benchmarks/gateway_overhead.py``; httpx's pool collapsed at 64 concurrent streams here).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Literal, Protocol

import aiohttp
from yarl import URL

from core.miners.receipts import StreamReceipt
from core.miners.signing import NONCE_HEADER, RequestSigner
from protocol.sse import Event, SSEError, SSEParser

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_STREAM_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024


class TransportError(Exception):
    """A call to a miner failed below HTTP semantics (connection, timeout, framing, size)."""

    kind: Literal["connect", "timeout", "protocol"] = "protocol"


class MinerConnectError(TransportError):
    kind = "connect"


class MinerTimeout(TransportError):
    kind = "timeout"


class MinerProtocolError(TransportError):
    """Malformed framing, an oversized body, or the connection dropped mid-body."""

    kind = "protocol"


class MinerResponse:
    """A whole answer; ``nonce`` and ``sender``: the btauth/1 nonce and hotkey the request was
    signed with (what the miner's receipt is bound to; empty when unknown)."""

    __slots__ = ("body", "headers", "nonce", "sender", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        nonce: str = "",
        sender: str = "",
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.nonce = nonce
        self.sender = sender


class MinerStream(Protocol):
    """An open response whose body is read as server-sent events. ``nonce``/``sender`` as in
    ``MinerResponse``; ``tap`` hashes every body byte read (None: not hashed)."""

    status: int
    headers: Mapping[str, str]

    @property
    def nonce(self) -> str: ...

    @property
    def sender(self) -> str: ...

    @property
    def tap(self) -> StreamReceipt | None: ...

    async def read_body(self, timeout: float) -> bytes:
        """The (capped) body of a non-2xx response, then closes."""

    async def next_events(self, timeout: float) -> list[Event]:
        """The events complete so far, waiting at most ``timeout`` s for at least one;
        an empty list at the end of the body. Raises ``MinerTimeout`` / ``MinerProtocolError``."""

    def close(self) -> None:
        """Release the connection (dropping it if the body was not read to the end)."""


class MinerClient(Protocol):
    async def post(
        self,
        url: str,
        path: str,
        body: bytes,
        *,
        receiver: str,
        timeout: float,
        max_bytes: int | None = None,
    ) -> MinerResponse: ...

    async def open_stream(
        self, url: str, path: str, body: bytes, *, receiver: str, timeout: float
    ) -> MinerStream: ...

    async def close(self) -> None: ...


def _map_error(exc: BaseException) -> TransportError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return MinerConnectError(f"connect timeout: {exc}")
    if isinstance(exc, TimeoutError):
        return MinerTimeout("timed out")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientOSError):
        return MinerConnectError(f"connection failed: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return MinerConnectError("server disconnected")
    return MinerProtocolError(f"{type(exc).__name__}: {exc}")


class AiohttpStream:
    __slots__ = (
        "_done",
        "_max_bytes",
        "_parser",
        "_pending",
        "_received",
        "_response",
        "headers",
        "nonce",
        "sender",
        "status",
        "tap",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        max_bytes: int,
        max_event: int,
        *,
        nonce: str = "",
        sender: str = "",
    ) -> None:
        self._response = response
        self.nonce = nonce
        self.sender = sender
        self.tap = StreamReceipt()
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._parser = SSEParser(max_line=max_event)
        self._pending: deque[Event] = deque()
        self._received = 0
        self._max_bytes = max_bytes
        self._done = False

    async def read_body(self, timeout: float) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._response.content.read(MAX_ERROR_BODY)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from None
        finally:
            self.close()

    async def next_events(self, timeout: float) -> list[Event]:
        if self._done:
            return []
        content = self._response.content
        try:
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        self._done = True
                        return self._parser.close()
                    self._received += len(chunk)
                    if self._received > self._max_bytes:
                        raise MinerProtocolError(f"stream larger than {self._max_bytes} bytes")
                    self.tap.feed(chunk)
                    events = self._parser.feed(chunk)
                    if events:
                        return events
        except SSEError as exc:
            raise MinerProtocolError(str(exc)) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from None

    def close(self) -> None:
        if self._response.content.is_eof():
            self._response.release()  # the connection goes back to the pool
        else:
            self._response.close()
        self._done = True


class AiohttpMinerClient:
    """One ``ClientSession`` for every miner call of the process. Create it inside the running
    event loop (the app's lifespan) and ``await close()`` at shutdown."""

    def __init__(
        self,
        signer: RequestSigner,
        *,
        connect_timeout: float = 3.0,
        limit: int = 4096,
        keepalive_s: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.signer = signer
        self.max_response_bytes = max_response_bytes
        self.max_stream_bytes = max_stream_bytes
        self.max_event_bytes = max_event_bytes
        connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=0, keepalive_timeout=keepalive_s, ttl_dns_cache=300
        )
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=None
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
        )
        self._urls: dict[tuple[str, str], URL] = {}

    def _url(self, base: str, path: str) -> URL:
        key = (base, path)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 8192:
                self._urls.clear()
            url = self._urls[key] = URL(base.rstrip("/") + path)
        return url

    def _headers(self, path: str, body: bytes, receiver: str) -> dict[str, str]:
        headers = self.signer.headers(method="POST", path=path, body=body, receiver=receiver)
        headers["Content-Type"] = "application/json"
        return headers

    async def _request(
        self, url: str, path: str, body: bytes, receiver: str, accept: str
    ) -> tuple[aiohttp.ClientResponse, str]:
        headers = self._headers(path, body, receiver)
        headers["Accept"] = accept
        response = await self._session.post(
            self._url(url, path), data=body, headers=headers, timeout=self._timeout
        )
        return response, headers[NONCE_HEADER]

    async def post(
        self,
        url: str,
        path: str,
        body: bytes,
        *,
        receiver: str,
        timeout: float,
        max_bytes: int | None = None,
    ) -> MinerResponse:
        limit = max_bytes or self.max_response_bytes
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(timeout):
                response, nonce = await self._request(url, path, body, receiver, "application/json")
                length = response.content_length
                if length is not None and length > limit:
                    raise MinerProtocolError(f"response larger than {limit} bytes")
                parts: list[bytes] = []
                size = 0
                while chunk := await response.content.readany():
                    size += len(chunk)
                    if size > limit:
                        raise MinerProtocolError(f"response larger than {limit} bytes")
                    parts.append(chunk)
            return MinerResponse(
                response.status,
                response.headers,
                b"".join(parts),
                nonce=nonce,
                sender=self.signer.hotkey,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from None
        finally:
            if response is not None:
                response.release()

    async def open_stream(
        self, url: str, path: str, body: bytes, *, receiver: str, timeout: float
    ) -> AiohttpStream:
        try:
            async with asyncio.timeout(timeout):
                response, nonce = await self._request(
                    url, path, body, receiver, "text/event-stream"
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from None
        return AiohttpStream(
            response,
            self.max_stream_bytes,
            self.max_event_bytes,
            nonce=nonce,
            sender=self.signer.hotkey,
        )

    async def close(self) -> None:
        await self._session.close()
