"""A miner stream after its first token (``OpenStream``), as ``Dispatcher.open_stream`` hands it
over: the items read so far, the rest read in batches, and the end recorded exactly once.

Every raw byte of the stream is hashed as it is read (the client's ``tap``); when the stream
ended well (``[DONE]`` and the body read to its end, receipt comment included) ``finish`` builds
the ``Receipt``: the miner's signature from the final ``: receipt <hex>`` comment, the digest of
everything before it, and the request's btauth/1 nonce. It is verified later, off the request
path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
from opentelemetry import trace

from core.miners.attempts import (
    Attempt,
    DispatchState,
    MinerEndpoint,
    StreamFailure,
    record_attempt,
)
from core.miners.client import MinerStream, TransportError
from core.miners.receipts import Receipt
from core.miners.stats import MinerStats, Outcome
from protocol.sse import Event

T = TypeVar("T")

DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, ValueError)


def _is_error_event(data: bytes) -> bool:
    return data.lstrip().startswith(b'{"error"') or b'"error":' in data[:64]


class OpenStream(Generic[T]):
    """A miner stream after its first token. ``first`` holds the items read before the commit
    (decoded), in order; ``next_batch`` returns the next items (empty at the end: check
    ``done``, true when the miner sent ``[DONE]``)."""

    def __init__(
        self,
        stats: MinerStats,
        state: DispatchState,
        endpoint: MinerEndpoint,
        attempt: Attempt,
        stream: MinerStream,
        decode: Callable[[bytes], T],
        span: trace.Span,
    ) -> None:
        self._stats = stats
        self.state = state
        self.endpoint = endpoint
        self.attempt = attempt
        self._stream = stream
        self._decode = decode
        self._span = span
        self.first: list[T] = []
        self.done = False
        # Built by ``finish`` when the stream ended well (None otherwise).
        self.receipt: Receipt | None = None
        self._finished = False

    def take(self, events: list[Event]) -> list[T]:
        """Decode the data events (``[DONE]`` sets ``done``; comments are skipped)."""
        items: list[T] = []
        for event in events:
            data = event.data
            if data is None:  # a comment: keep-alive, or the receipt (read from the tap)
                continue
            if self.done:
                continue
            if data == b"[DONE]":
                self.done = True
                continue
            try:
                items.append(self._decode(data))
            except DECODE_ERRORS:
                if _is_error_event(data):
                    raise StreamFailure(
                        Outcome.MIDSTREAM_ERROR, "the miner reported an error"
                    ) from None
                raise StreamFailure(
                    Outcome.BAD_RESPONSE, "the miner sent a malformed event"
                ) from None
        return items

    async def next_batch(self, timeout: float) -> list[T]:
        """Items from the next read (waiting at most ``timeout`` s); ``[]`` at the end."""
        while not self.done:
            try:
                events = await self._stream.next_events(timeout)
            except TransportError as exc:
                outcome = Outcome.TIMEOUT if exc.kind == "timeout" else Outcome.MIDSTREAM_ERROR
                message = "the miner stopped sending" if exc.kind == "timeout" else str(exc)
                raise StreamFailure(outcome, message) from None
            if not events:
                return []
            items = self.take(events)
            if items:
                return items
        await self._read_to_end(min(timeout, 1.0))
        return []

    async def _read_to_end(self, timeout: float) -> None:
        """After ``[DONE]``: read the rest of the body (the receipt comment, the chunked
        terminator) so the connection goes back to the pool instead of being dropped."""
        until = time.monotonic() + timeout
        with contextlib.suppress(TransportError, StreamFailure):
            while (left := until - time.monotonic()) > 0:
                events = await self._stream.next_events(left)
                if not events:
                    return
                self.take(events)

    def finish(self, outcome: Outcome, *, units: float = 0.0) -> None:
        """Record the outcome, release the connection, end the attempt's span. Idempotent and
        synchronous (safe in ``finally`` of a cancelled task)."""
        if self._finished:
            return
        self._finished = True
        stream = self._stream
        stream.close()
        tap = stream.tap
        if outcome is Outcome.OK and tap is not None:
            digest, signature = tap.finish()
            self.receipt = Receipt(
                miner=self.endpoint.hotkey,
                validator=stream.sender,
                nonce=stream.nonce,
                signature=signature,
                digest=digest,
            )
        attempt = self.attempt
        now = time.monotonic()
        attempt.outcome = outcome
        attempt.duration_s = now - attempt.started
        after_first = attempt.duration_s - (attempt.ttft_s or 0.0)
        record_attempt(
            self._stats,
            self.state,
            attempt,
            outcome,
            units=units,
            generation_s=after_first,
            span=self._span,
        )
