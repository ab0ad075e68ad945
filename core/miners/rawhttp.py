"""A lean HTTP/1.1 client for miner calls: asyncio protocols + ``httptools``, pooled keep-alive.

Same interface as ``AiohttpMinerClient`` (``MinerClient``), for the one request shape the
validator sends (a signed JSON POST, a JSON or SSE answer), at a fraction of aiohttp's CPU per
request (see ``benchmarks/gateway_overhead.py --client``): the request goes out in one write,
the response is parsed by ``httptools`` (chunked encoding included) straight into a buffer the
reader drains. Idle connections are kept per (host, port); a request that fails on a reused
connection before any byte of the answer is retried once on a fresh one (the miner may have
closed it while idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

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
from core.miners.signing import RequestSigner
from protocol.sse import Event, SSEError, SSEParser

_PAUSE_ABOVE = 1024 * 1024
_MAX_IDLE_PER_HOST = 256


class Headers(dict[str, str]):
    """Response headers, names stored lower-case and looked up case-insensitively."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class _Connection(asyncio.Protocol):
    """One TCP connection; one request at a time."""

    def __init__(self, key: tuple[str, int, bool]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers = Headers()
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.error: Exception | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._paused = False

    # asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = MinerProtocolError(f"malformed HTTP response: {exc}")
            self.close()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            self.error = MinerProtocolError("the miner closed the connection")
        self._wake()

    # httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        dict.__setitem__(self.headers, name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self._buffer.append(body)
        self._buffered += len(body)
        if self._buffered > _PAUSE_ABOVE and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        self.complete = True
        # Only meaningful inside the parser's callbacks.
        self.keep_alive = self._parser.should_keep_alive()

    # Reading -------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def wait_headers(self) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self._wait()

    def take(self) -> bytes:
        data = b"".join(self._buffer) if len(self._buffer) != 1 else self._buffer[0]
        self._buffer.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def read(self) -> bytes:
        """The body bytes received so far (waiting for some); ``b""`` at the end."""
        while not self._buffer:
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait()
        return self.take()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Pool:
    def __init__(self, connect_timeout: float, ssl_context: ssl.SSLContext | None) -> None:
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.idle: dict[tuple[str, int, bool], deque[_Connection]] = {}

    async def acquire(self, key: tuple[str, int, bool]) -> _Connection:
        idle = self.idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.reused = True
                connection._reset()
                return connection
        host, port, tls = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(key),
                    host,
                    port,
                    ssl=(self.ssl_context or ssl.create_default_context()) if tls else None,
                )
        except TimeoutError:
            raise MinerConnectError("connect timeout") from None
        except OSError as exc:
            raise MinerConnectError(f"connection failed: {exc}") from None
        return protocol

    def release(self, connection: _Connection) -> None:
        if not connection.reusable:
            connection.close()
            return
        idle = self.idle.setdefault(connection.key, deque())
        if len(idle) >= _MAX_IDLE_PER_HOST:
            connection.close()
            return
        idle.append(connection)

    def close(self) -> None:
        for idle in self.idle.values():
            for connection in idle:
                connection.close()
        self.idle.clear()


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
        "status",
    )

    def __init__(
        self, pool: _Pool, connection: _Connection, max_bytes: int, max_event: int
    ) -> None:
        self._pool = pool
        self._connection = connection
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
        self._pool = _Pool(connect_timeout, ssl_context)
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
    ) -> bytes:
        signed = self.signer.headers(method="POST", path=path, body=body, receiver=receiver)
        lines = [
            b"POST " + path.encode("ascii") + b" HTTP/1.1",
            b"Host: " + authority,
            b"Content-Type: application/json",
            b"Accept: " + accept,
            b"Content-Length: " + str(len(body)).encode(),
        ]
        lines.extend(f"{name}: {value}".encode("latin-1") for name, value in signed.items())
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _send(
        self, url: str, path: str, body: bytes, receiver: str, accept: bytes
    ) -> _Connection:
        key, authority = self._target(url)
        for _ in range(2):
            connection = await self._pool.acquire(key)
            # Signed per attempt: a retry on a fresh connection carries a fresh nonce.
            head = self._head(authority, path, body, receiver, accept)
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
            return connection
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
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                connection = await self._send(url, path, body, receiver, b"application/json")
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
        return MinerResponse(connection.status, connection.headers, b"".join(parts))

    async def open_stream(
        self, url: str, path: str, body: bytes, *, receiver: str, timeout: float
    ) -> RawStream:
        try:
            async with asyncio.timeout(timeout):
                connection = await self._send(url, path, body, receiver, b"text/event-stream")
        except TimeoutError:
            raise MinerTimeout("timed out") from None
        return RawStream(self._pool, connection, self.max_stream_bytes, self.max_event_bytes)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close()
