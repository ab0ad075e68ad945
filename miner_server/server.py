"""Serving the app built by ``create_app(settings)`` in this process, on granian or uvicorn.

Granian's embedded server (``granian.server.embed.Server``) takes the app object itself (no
import string, no module-level ``app``) and runs on this process's event loop (uvloop), one
worker; uvicorn does the same with ``uvicorn.Server``. SIGINT and SIGTERM stop accepting
connections, let the app's lifespan close the engines, and return.

uvloop (and httptools for uvicorn) are expected to be installed; without them the server runs,
slower, on the stock asyncio loop (and h11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping

from litestar import Litestar

from inference.base import Engine
from miner_server.app import create_app
from miner_server.settings import MinerSettings

logger = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StartupFailed(RuntimeError):
    """The app did not start (an engine failed to load); the cause is in the log."""


def run(settings: MinerSettings, *, engines: Mapping[str, Engine] | None = None) -> None:
    """Build the app and serve it until SIGINT/SIGTERM."""
    app = create_app(settings, engines=engines)
    try:
        import uvloop
    except ImportError:  # pyproject should carry uvloop (see the module docstring)
        logger.warning("uvloop is not installed: serving on the slower stock asyncio loop")
        asyncio.run(serve(app, settings))
    else:
        uvloop.run(serve(app, settings))


async def serve(
    app: Litestar, settings: MinerSettings, *, stop: asyncio.Event | None = None
) -> None:
    """Serve `app` until SIGINT/SIGTERM or, when `stop` is given, until it is set (then no
    signal handlers are installed: the caller owns the process, e.g. a test or `sn19 dev`)."""
    host = settings.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    logger.info("sn19 miner listening on http://%s:%d (%s)", shown, settings.port, settings.server)
    build = _granian if settings.server == "granian" else _uvicorn
    serving, halt = build(app, settings)
    if stop is None:
        await _until_signalled(serving, halt)
    else:
        await _until_set(serving, halt, stop)
    logger.info("sn19 miner stopped")


def _granian(app: Litestar, settings: MinerSettings) -> tuple[Awaitable[None], Callable[[], None]]:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        websockets=False,
        log_level=LogLevels.warning,
        # Granian's own records go through the root logger configured by the CLI.
        log_dictconfig={"loggers": {"_granian": {"propagate": True}}},
        log_access=False,
    )

    async def serving() -> None:
        from granian.errors import FatalError

        try:
            await server.serve()
        except FatalError as exc:
            raise StartupFailed(f"the miner failed to start ({exc}); see the log above") from exc

    return serving(), server.stop


def _uvicorn(app: Litestar, settings: MinerSettings) -> tuple[Awaitable[None], Callable[[], None]]:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",
        http="auto",  # httptools when installed, else h11
        access_log=False,
        log_config=None,
        lifespan="on",
    )

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Signals are handled by `serve`: uvicorn's would re-raise SIGINT after shutdown.
            yield

    server = Server(config)

    def halt() -> None:
        server.force_exit = server.should_exit  # a second signal skips the graceful wait
        server.should_exit = True

    async def serving() -> None:
        try:
            await server.serve()  # a failed lifespan startup is sys.exit(3) in uvicorn
        except SystemExit as exc:
            raise StartupFailed("the miner failed to start; see the log above") from exc

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
