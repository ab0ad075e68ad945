"""An in-memory ``MinerClient``: canned miner answers, no network. For unit tests of dispatch
and relay, and for measuring the gateway's own CPU per request without sockets."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from core.miners import MinerConnectError, MinerResponse, MinerTimeout
from core.miners.receipts import StreamReceipt
from protocol.sse import Event, SSEParser

# The "validator hotkey" fake calls are signed with (receipts from fakes never verify).
FAKE_SENDER = "5FakeValidator" + "x" * 34
_NONCES = itertools.count(1)

Behaviour = Callable[[str, str, bytes], "Canned"]


class Canned:
    """One scripted answer: status, headers, and body pieces (each one network read), with an
    optional delay before each piece; ``error`` raised instead of answering; ``gate``: the
    pieces after the first wait until the event is set (a request held in flight)."""

    def __init__(
        self,
        status: int = 200,
        pieces: list[bytes] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
        first_delay_s: float = 0.0,
        error: Exception | None = None,
        drop_after: int | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.status = status
        self.pieces = pieces or []
        self.headers = dict(headers or {})
        self.delay_s = delay_s
        self.first_delay_s = first_delay_s
        self.error = error
        self.drop_after = drop_after
        self.gate = gate


class FakeStream:
    def __init__(self, canned: Canned) -> None:
        self.nonce = str(next(_NONCES))
        self.sender = FAKE_SENDER
        self.tap = StreamReceipt()
        self.status = canned.status
        self.headers: Mapping[str, str] = canned.headers
        self._canned = canned
        self._index = 0
        self._parser = SSEParser()
        self.closed = False

    async def read_body(self, timeout: float) -> bytes:
        self.closed = True
        return b"".join(self._canned.pieces)

    async def next_events(self, timeout: float) -> list[Event]:
        from core.miners import MinerProtocolError

        canned = self._canned
        while True:
            if canned.drop_after is not None and self._index >= canned.drop_after:
                raise MinerProtocolError("the miner closed the connection")
            if self._index >= len(canned.pieces):
                return self._parser.close()
            delay = canned.first_delay_s if self._index == 0 else canned.delay_s
            if delay:
                if delay > timeout:
                    await asyncio.sleep(timeout)
                    raise MinerTimeout("timed out")
                await asyncio.sleep(delay)
            if canned.gate is not None and self._index > 0:
                try:
                    await asyncio.wait_for(canned.gate.wait(), timeout)
                except TimeoutError:
                    raise MinerTimeout("timed out") from None
            piece = canned.pieces[self._index]
            self._index += 1
            self.tap.feed(piece)
            events = self._parser.feed(piece)
            if events:
                return events

    def close(self) -> None:
        self.closed = True


class FakeMinerClient:
    """``MinerClient`` whose answers come from ``behaviour(url, path, body)``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[str, str, Any]] = []
        self.streams: list[FakeStream] = []

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
        self.calls.append((url, path, msgspec.json.decode(body)))
        canned = self.behaviour(url, path, body)
        if canned.error is not None:
            raise canned.error
        if canned.first_delay_s > timeout:
            await asyncio.sleep(timeout)
            raise MinerTimeout("timed out")
        if canned.first_delay_s:
            await asyncio.sleep(canned.first_delay_s)
        return MinerResponse(
            canned.status,
            canned.headers,
            b"".join(canned.pieces),
            nonce=str(next(_NONCES)),
            sender=FAKE_SENDER,
        )

    async def open_stream(
        self, url: str, path: str, body: bytes, *, receiver: str, timeout: float
    ) -> FakeStream:
        self.calls.append((url, path, msgspec.json.decode(body)))
        canned = self.behaviour(url, path, body)
        if canned.error is not None:
            raise canned.error
        stream = FakeStream(canned)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        return None


__all__ = ["Canned", "FakeMinerClient", "FakeStream", "MinerConnectError"]
