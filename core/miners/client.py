"""The HTTP client for validator → miner calls, behind a small interface so it can be swapped.

``MinerClient`` signs every call (a fresh btauth/1 nonce per attempt) and returns either a whole
response (``post``, size-capped) or an open event stream (``open_stream``) whose events are read
with a per-read timeout and a total size cap. ``MinerStream.close()`` is synchronous and
idempotent, so it is safe in ``finally`` blocks of cancelled tasks: it drops the connection, which
is how a miner learns that the client went away and stops generating.

``core.miners.rawhttp.RawMinerClient`` is the implementation, used by the gateway and the
scoring process alike (an aiohttp client cost several times its CPU per request, and httpx's
pool collapsed at 64 concurrent streams here: ``benchmarks/gateway_overhead.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

from core.miners.receipts import StreamReceipt
from protocol.sse import Event

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
