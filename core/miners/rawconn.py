"""The connections under ``core.miners.rawhttp``: one asyncio protocol per TCP connection, its
response parsed by ``httptools`` (chunked encoding included) into a buffer the reader drains, and
a keep-alive pool per (host, port, tls).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

import httptools

from core.miners.client import MinerConnectError, MinerProtocolError

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


class Connection(asyncio.Protocol):
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


class Pool:
    def __init__(self, connect_timeout: float, ssl_context: ssl.SSLContext | None) -> None:
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.idle: dict[tuple[str, int, bool], deque[Connection]] = {}

    async def acquire(self, key: tuple[str, int, bool]) -> Connection:
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
                    lambda: Connection(key),
                    host,
                    port,
                    ssl=(self.ssl_context or ssl.create_default_context()) if tls else None,
                )
        except TimeoutError:
            raise MinerConnectError("connect timeout") from None
        except OSError as exc:
            raise MinerConnectError(f"connection failed: {exc}") from None
        return protocol

    def release(self, connection: Connection) -> None:
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
