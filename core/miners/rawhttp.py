"""A lean HTTP/1.1 client for miner calls: asyncio protocols + ``httptools``, pooled keep-alive.

The ``MinerClient`` of every validator process, for the one request shape the validator sends
(a signed JSON POST, a JSON or SSE answer), at a fraction of aiohttp's CPU per request: the
request goes out in one write,
the response is parsed by ``httptools`` (chunked encoding included) straight into a buffer the
reader drains. Idle connections are kept per (host, port); a request that fails on a reused
connection before any byte of the answer is retried once on a fresh one (the miner may have
closed it while idle). The connections and the pool are in ``core.miners.rawconn``.

Every answer carries the btauth/1 nonce it was signed with (``nonce``, ``sender``); a stream
hashes the raw body bytes as they arrive (``tap``, a ``StreamReceipt``) so the miner's receipt can
be checked without keeping the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from core.miners.client import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_STREAM_BYTES,
    MAX_ERROR_BODY,
    MinerConnectError,
    MinerProtocolError,
    MinerResponse,
    MinerTimeout,
)
from core.miners.rawconn import Connection, Pool
from core.miners.receipts import StreamReceipt
from core.miners.signing import NONCE_HEADER, RequestSigner
from protocol.sse import Event, SSEError, SSEParser


class RawStream:
    """``MinerStream`` over a pooled connection."""

    __slots__ = (
        "_connection",
        "_done",
        "_max_bytes",
        "_parser",
        "_pool",
        "_received",
        "headers",
        "nonce",
        "sender",
        "status",
        "tap",
    )

    def __init__(
        self,
        pool: Pool,
        connection: Connection,
        max_bytes: int,
        max_event: int,
        *,
        nonce: str = "",
        sender: str = "",
    ) -> None:
        self._pool = pool
        self._connection = connection
        self.nonce = nonce
        self.sender = sender
        self.tap = StreamReceipt()
        self.status = connection.status
        self.headers: Mapping[str, str] = connection.headers
        self._parser = SSEParser(max_line=max_event)
        self._received = 0
        self._max_bytes = max_bytes
        self._done = False

    async def read_body(self, timeout: float) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while size < MAX_ERROR_BODY and (chunk := await self._connection.read()):
                    parts.append(chunk)
                    size += len(chunk)
        except TimeoutError:
            raise MinerTimeout("timed out") from None
        finally:
            self.close()
        return b"".join(parts)[:MAX_ERROR_BODY]

    async def next_events(self, timeout: float) -> list[Event]:
        if self._done:
            return []
        connection = self._connection
        try:
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await connection.read()
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
        except TimeoutError:
            raise MinerTimeout("timed out") from None

    def close(self) -> None:
        self._done = True
        self._pool.release(self._connection)


class RawMinerClient:
    """``MinerClient`` over pooled raw connections. Create and close it in the running loop."""

    def __init__(
        self,
        signer: RequestSigner,
        *,
        connect_timeout: float = 3.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.signer = signer
        self.max_response_bytes = max_response_bytes
        self.max_stream_bytes = max_stream_bytes
        self.max_event_bytes = max_event_bytes
        self._pool = Pool(connect_timeout, ssl_context)
        self._targets: dict[str, tuple[tuple[str, int, bool], bytes]] = {}

    def _target(self, url: str) -> tuple[tuple[str, int, bool], bytes]:
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            tls = parts.scheme == "https"
            host = parts.hostname or "127.0.0.1"
            port = parts.port or (443 if tls else 80)
            authority = parts.netloc.rsplit("@", 1)[-1]
            if len(self._targets) > 8192:
                self._targets.clear()
            found = self._targets[url] = ((host, port, tls), authority.encode("ascii"))
        return found

    def _head(
        self, authority: bytes, path: str, body: bytes, receiver: str, accept: bytes
    ) -> tuple[bytes, str]:
        signed = self.signer.headers(method="POST", path=path, body=body, receiver=receiver)
        lines = [
            b"POST " + path.encode("ascii") + b" HTTP/1.1",
            b"Host: " + authority,
            b"Content-Type: application/json",
            b"Accept: " + accept,
            b"Content-Length: " + str(len(body)).encode(),
        ]
        lines.extend(f"{name}: {value}".encode("latin-1") for name, value in signed.items())
        return b"\r\n".join(lines) + b"\r\n\r\n", signed[NONCE_HEADER]

    async def _send(
        self, url: str, path: str, body: bytes, receiver: str, accept: bytes
    ) -> tuple[Connection, str]:
        key, authority = self._target(url)
        for _ in range(2):
            connection = await self._pool.acquire(key)
            # Signed per attempt: a retry on a fresh connection carries a fresh nonce.
            head, nonce = self._head(authority, path, body, receiver, accept)
            assert connection.transport is not None
            connection.transport.write(head + body)
            try:
                await connection.wait_headers()
            except MinerProtocolError:
                connection.close()
                if connection.reused and not connection.received_any:
                    continue  # the miner closed the idle connection: once more, fresh
                raise
            except BaseException:
                connection.close()
                raise
            return connection, nonce
        raise MinerConnectError("the miner keeps closing connections")

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
        connection: Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                connection, nonce = await self._send(url, path, body, receiver, b"application/json")
                length = connection.headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > limit:
                    raise MinerProtocolError(f"response larger than {limit} bytes")
                parts: list[bytes] = []
                size = 0
                while chunk := await connection.read():
                    size += len(chunk)
                    if size > limit:
                        raise MinerProtocolError(f"response larger than {limit} bytes")
                    parts.append(chunk)
        except TimeoutError:
            raise MinerTimeout("timed out") from None
        finally:
            if connection is not None:
                self._pool.release(connection)
        return MinerResponse(
            connection.status,
            connection.headers,
            b"".join(parts),
            nonce=nonce,
            sender=self.signer.hotkey,
        )

    async def open_stream(
        self, url: str, path: str, body: bytes, *, receiver: str, timeout: float
    ) -> RawStream:
        try:
            async with asyncio.timeout(timeout):
                connection, nonce = await self._send(
                    url, path, body, receiver, b"text/event-stream"
                )
        except TimeoutError:
            raise MinerTimeout("timed out") from None
        return RawStream(
            self._pool,
            connection,
            self.max_stream_bytes,
            self.max_event_bytes,
            nonce=nonce,
            sender=self.signer.hotkey,
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close()
