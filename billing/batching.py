"""Group commit per account: one database operation in flight per account, what arrives while
it runs goes into the next one.

Every hold and every settle of an account updates (and locks) that account's row, so requests
of one busy account serialise on it: one transaction per request caps an account at what one
row lock allows per second. ``GroupCommit`` keeps at most one batch per key running in this
process; requests for a key that arrive meanwhile wait and leave together in the next batch, in
arrival order. With no concurrency a batch is one request, sent at once (no timer, no added
latency); under load the batch grows by itself and the row is locked once per batch.

A caller that goes away while its batch runs (``CancelledError``) does not stop the batch: the
batch's results are all written. ``abandoned`` is told of each result nobody waited for (a hold
taken for a request that was cancelled meanwhile must be released, not left to expire).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
A = TypeVar("A")
R = TypeVar("R")

MAX_BATCH = 256


class GroupCommit(Generic[K, A, R]):
    def __init__(
        self,
        run: Callable[[K, list[A]], Awaitable[list[R]]],
        *,
        abandoned: Callable[[A, R], None] | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run = run
        self._abandoned = abandoned
        self._max = max_batch
        self._waiting: dict[K, list[tuple[A, asyncio.Future[R]]]] = {}
        self._running: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: A) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.setdefault(key, []).append((item, future))
        if key not in self._running:
            self._running[key] = loop.create_task(self._drain(key))
        return await future

    async def _drain(self, key: K) -> None:
        try:
            while waiting := self._waiting.pop(key, None):
                batch, rest = waiting[: self._max], waiting[self._max :]
                if rest:
                    self._waiting[key] = rest
                await self._one(key, batch)
        finally:
            del self._running[key]

    async def _one(self, key: K, batch: list[tuple[A, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run(key, [item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (item, future), result in zip(batch, results, strict=True):
            if future.cancelled():
                if self._abandoned is not None:
                    self._abandoned(item, result)
            elif not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        """Wait for the batches in flight (at shutdown)."""
        running = list(self._running.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)
