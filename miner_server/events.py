"""Driving an engine's event iterator: coalescing and cancellation.

``EventBatches`` runs the engine's iterator in its own task and hands the consumer every event
that is already waiting in one batch, so a fast engine costs one chunk per choice per write
rather than one per token; the consumer never waits for more than the first event. ``abort``
(a client disconnect) cancels the engine's task, which closes the engine's iterator and so
stops generation. ``DisconnectWatch`` calls ``abort`` when the ASGI server reports the client
gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from inference.base import TextEvent


class ClientGone(Exception):
    """The client disconnected; the work for it was cancelled."""


class _End:
    __slots__ = ()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = _End()
# Most events in one batch: a chunk stays well under the protocol's per-event token bound.
MAX_BATCH = 512
_Item = TextEvent | _End | _Failure


class EventBatches:
    __slots__ = ("_error", "_finished", "_items", "_task", "_waiter")

    def __init__(self, events: AsyncIterator[TextEvent]) -> None:
        # A deque and one waiter: cheaper per event than asyncio.Queue, and there is one consumer.
        self._items: deque[_Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._error: BaseException | None = None
        self._task = asyncio.get_running_loop().create_task(self._pump(events))

    def _push(self, item: _Item) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _pump(self, events: AsyncIterator[TextEvent]) -> None:
        push = self._push
        try:
            async for event in events:
                push(event)
            push(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, who reports it
            push(_Failure(exc))
        finally:
            close: Callable[[], Awaitable[Any]] | None = getattr(events, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    @property
    def finished(self) -> bool:
        """Every event has been handed out (the next ``next`` returns ``[]`` at once)."""
        return self._finished

    async def next(self) -> list[TextEvent]:
        """The events available now, waiting for at least one; ``[]`` once the engine is done.
        Raises the engine's error (after the events before it), or ``ClientGone``."""
        if self._error is not None:
            error, self._error = self._error, None
            self._finished = True
            raise error
        if self._finished:
            return []
        items = self._items
        if not items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        batch: list[TextEvent] = []
        while items:
            item = items.popleft()
            if isinstance(item, _End):
                self._finished = True
                return batch
            if isinstance(item, _Failure):
                if batch:
                    self._error = item.error
                    return batch
                self._finished = True
                raise item.error
            batch.append(item)
            if len(batch) >= MAX_BATCH:
                break
        return batch

    def abort(self) -> None:
        """Stop the engine and wake the consumer with ``ClientGone``."""
        if not self._task.done():
            self._task.cancel()
        self._push(_Failure(ClientGone()))

    def close(self) -> None:
        """Stop the engine if it is still running (idempotent, never blocks)."""
        if not self._task.done():
            self._task.cancel()


class DisconnectWatch:
    """Calls `on_disconnect` when the ASGI server reports ``http.disconnect`` for a request
    whose body has been read. ``stop`` ends the watch.

    The watching task starts only once the request has lasted ``WATCH_AFTER_S``: most answers
    end sooner, and a task per request (waiting on the server's channel) is a measurable part
    of a short request's CPU. A client that leaves earlier is noticed when the answer is
    written (the server reports the closed connection) or by the watch once it starts."""

    WATCH_AFTER_S = 0.1
    __slots__ = ("_on_disconnect", "_receive", "_task", "_timer")

    def __init__(self, receive: Callable[[], Awaitable[Any]], on_disconnect: Callable[[], None]):
        self._receive = receive
        self._on_disconnect = on_disconnect
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            self.WATCH_AFTER_S, self._start
        )

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(
            _watch(self._receive, self._on_disconnect)
        )

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()


async def _watch(receive: Callable[[], Awaitable[Any]], on_disconnect: Callable[[], None]) -> None:
    try:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                on_disconnect()
                return
    except Exception:  # the server closed the channel: nothing left to watch  # noqa: BLE001
        return
