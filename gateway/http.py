"""Low-level responses: JSON bodies we already encoded, and the SSE stream.

Handlers return these ASGI apps directly (Litestar passes them through), so a response costs one
``http.response.start`` and one or more body messages and no re-serialization.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable

from litestar.types import Receive, Scope, Send

from core.errors import AppError
from protocol.sse import KEEPALIVE

SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class JSONResponse:
    """An already-encoded JSON body: one ``http.response.start``, one body message."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.status = status
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def json_response(
    body: bytes, *, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    encoded = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if headers:
        encoded.extend((key.encode(), value.encode()) for key, value in headers.items())
    return JSONResponse(body, status, encoded)


class SSEResponse:
    """Streams ``body`` as ``text/event-stream``, deciding the status only when it must.

    The body's first item comes from opening the miner stream. If that raises an ``AppError``
    before anything was sent, the client gets a plain HTTP error (``on_error`` renders it: 503,
    504, ...). If it takes longer than ``keepalive_s``, the response starts anyway and sends
    ``: keep-alive`` comments until it arrives; a later error becomes an in-band error event.
    Only timers are armed on the fast path: the keep-alive task, and the task watching for a
    client disconnect (which cancels the body, and so the miner call), start only when a stream
    lasts longer than ``keepalive_s`` / ``WATCH_AFTER_S``. The body generator is always closed.
    """

    WATCH_AFTER_S = 0.1

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        headers: Callable[[], dict[str, str]],
        *,
        keepalive_s: float,
        on_error: Callable[[AppError], JSONResponse],
        error_event: Callable[[AppError], bytes],
    ) -> None:
        self.body = body
        self.headers = headers
        self.keepalive_s = keepalive_s
        self.on_error = on_error
        self.error_event = error_event
        self._send: Send | None = None
        self._started = False
        self._disconnected = False
        self._keepalive: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        assert self._send is not None
        headers = [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in self.headers().items())]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def _chunk(self, data: bytes, *, more: bool = True) -> None:
        assert self._send is not None
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def _keepalives(self) -> None:
        lock = self._lock = asyncio.Lock()
        while True:
            async with lock:
                await self._start()
                await self._chunk(KEEPALIVE)
            await asyncio.sleep(self.keepalive_s)

    async def _stop_keepalives(self, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        task = self._keepalive
        if task is None:
            return
        if self._lock is not None:
            async with self._lock:  # never interrupt a send in progress
                task.cancel()
        else:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _watch(self, receive: Receive, task: asyncio.Task[object] | None) -> None:
        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self._disconnected = True
                    if task is not None:
                        task.cancel()
                    return

        self._watcher = asyncio.get_running_loop().create_task(watch())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        watch_timer = loop.call_later(self.WATCH_AFTER_S, self._watch, receive, task)
        keepalive_timer = loop.call_later(
            self.keepalive_s,
            lambda: setattr(self, "_keepalive", loop.create_task(self._keepalives())),
        )
        try:
            try:
                first = await anext(self.body, b"")
            except AppError as exc:
                await self._stop_keepalives(keepalive_timer)
                response = self.on_error(exc)
                if not self._started:
                    await response(scope, receive, send)
                    return
                await self._chunk(self.error_event(exc), more=False)
                return
            await self._stop_keepalives(keepalive_timer)
            await self._start()
            await self._chunk(first)
            async for chunk in self.body:
                await self._chunk(chunk)
            await self._chunk(b"", more=False)
        except asyncio.CancelledError:
            if self._disconnected:
                if task is not None:
                    task.uncancel()
                return  # the client went away: nothing more to send
            raise
        finally:
            keepalive_timer.cancel()
            watch_timer.cancel()
            for helper in (self._watcher, self._keepalive):
                if helper is not None:
                    helper.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self.body.aclose()
