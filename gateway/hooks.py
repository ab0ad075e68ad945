"""The completion hook: finished requests handed to subscribers (the checker's organic sampling)
off the hot path.

``CompletionHub.publish`` is synchronous and O(1): with no subscribers it returns at once;
otherwise it enqueues (dropping, and counting, when the queue is full) and a background task
started in the app's lifespan delivers each item to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from core.miners import Receipt
from protocol.records import TextOutput

log = logging.getLogger(__name__)


class MinerRef(msgspec.Struct, frozen=True):
    hotkey: str
    uid: int


class Timings(msgspec.Struct):
    started: float  # wall-clock (time.time()) when the request arrived
    ttft_s: float | None
    total_s: float
    attempts: int


class CompletedRequest(msgspec.Struct):
    """One finished request: the task, what the miner was sent, what it delivered."""

    request_id: str
    task_id: str
    kind: str  # chat | completion | embedding | image
    miner_request: Any  # the protocol.miner request Struct sent to the miner
    result: TextOutput | Any  # TextOutput for text; the decoded miner response otherwise
    miner: MinerRef
    timings: Timings
    outcome: str
    # The miner's receipt for an answer delivered in full (verified by ``gateway.receipts``); a
    # ``str`` is an already-stored receipt record.
    receipt: Receipt | str | None = None


Subscriber = Callable[[CompletedRequest], Awaitable[None]]


class CompletionHub:
    def __init__(self, *, maxsize: int = 10_000) -> None:
        self._subscribers: list[Subscriber] = []
        self._queue: asyncio.Queue[CompletedRequest] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        # Whether anyone listens (publishers skip building the item when not).
        self.active = False

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)
        self.active = True

    def publish(self, item: CompletedRequest) -> None:
        if not self._subscribers:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _deliver(self) -> None:
        while True:
            item = await self._queue.get()
            for subscriber in list(self._subscribers):
                try:
                    await subscriber(item)
                except Exception:
                    log.exception("completion subscriber failed for %s", item.request_id)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._deliver())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
