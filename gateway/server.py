"""Serving the gateway in this process: granian's embedded server (preferred) or uvicorn, on
uvloop, one worker, no access log.

``run(settings, compose)`` starts the event loop, enters ``compose(settings)`` (the process's
composition root: it opens what the app needs and yields the app; default ``open_gateway``,
the API alone) and serves the app until SIGINT/SIGTERM. Granian's embedded server
(``granian.server.embed.Server``) takes the app object itself, so there is no module-level
``app`` and nothing runs at import. For more cores, run several gateway processes behind the
load balancer (they share Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar

from core.settings import Settings
from gateway.app import create_app
from gateway.resources import open_shared

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GC_THRESHOLD = 20_000


class StartupFailed(RuntimeError):
    """The app did not start; the cause is in the log."""


Compose = Callable[[Settings], AbstractAsyncContextManager[Litestar]]


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Litestar]:
    """The API alone over its own ``Shared``."""
    async with open_shared(settings) as shared:
        yield create_app(settings, shared=shared)


def run(settings: Settings, compose: Compose = open_gateway) -> None:
    """Serve the app ``compose(settings)`` yields until SIGINT/SIGTERM."""
    import uvloop

    async def main() -> None:
        async with compose(settings) as app:
            app.on_startup.append(tune_gc)
            await serve(app, settings)

    uvloop.run(main())


def tune_gc() -> None:
    """Once started: move everything alive (modules, the app, tokenizers) out of the cyclic
    GC's reach and collect young objects less often. Without this, full collections traversing
    the imported world took ~40 % of the gateway's CPU under load."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def serve(app: Litestar, settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Serve `app` until SIGINT/SIGTERM or, when `stop` is given, until it is set (then no
    signal handlers are installed: the caller owns the process, e.g. a test or `sn19 dev`)."""
    gateway = settings.gateway
    log.info(
        "sn19 gateway listening on http://%s:%d (%s)", gateway.host, gateway.port, gateway.server
    )
    build = _granian if gateway.server == "granian" else _uvicorn
    serving, halt = build(app, settings)
    if stop is None:
        await _until_signalled(serving, halt)
    else:
        await _until_set(serving, halt, stop)
    log.info("sn19 gateway stopped")


def _granian(app: Litestar, settings: Settings) -> tuple[Awaitable[None], Callable[[], None]]:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address=settings.gateway.host,
        port=settings.gateway.port,
        interface=Interfaces.ASGI,
        websockets=False,
        backlog=2048,
        log_level=LogLevels.warning,
        log_dictconfig={"loggers": {"_granian": {"propagate": True}}},
        log_access=False,
    )

    async def serving() -> None:
        from granian.errors import FatalError

        try:
            await server.serve()
        except FatalError as exc:
            raise StartupFailed(f"the gateway failed to start ({exc}); see the log") from exc

    return serving(), server.stop


def _uvicorn(app: Litestar, settings: Settings) -> tuple[Awaitable[None], Callable[[], None]]:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.gateway.host,
        port=settings.gateway.port,
        loop="none",
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="on",
        backlog=2048,
    )

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the signal handlers are ours

    server = Server(config)

    def halt() -> None:
        server.force_exit = server.should_exit  # a second signal skips the graceful wait
        server.should_exit = True

    async def serving() -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # a failed lifespan startup is sys.exit(3) in uvicorn
            raise StartupFailed("the gateway failed to start; see the log") from exc

    return serving(), halt


async def _until_signalled(serving: Awaitable[None], halt: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, halt)
    try:
        await serving
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def _until_set(
    serving: Awaitable[None], halt: Callable[[], None], stop: asyncio.Event
) -> None:
    async def wait_then_halt() -> None:
        await stop.wait()
        halt()

    watcher = asyncio.get_running_loop().create_task(wait_then_halt())
    try:
        await serving
    finally:
        watcher.cancel()
