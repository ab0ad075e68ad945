"""Serving any ASGI app (the gateway, a fake miner) on a real port in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.support.net import free_port


@contextlib.asynccontextmanager
async def serve_app(
    app: Any, *, port: int | None = None, server: str = "uvicorn", health: str = "/healthz"
) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (uvicorn or granian); yields the base URL."""
    from core.settings import Settings
    from gateway.server import serve

    port = port or free_port()
    settings = Settings.from_env(
        {}, overrides={"gateway": {"host": "127.0.0.1", "port": port, "server": server}}
    )
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(serve(app, settings, stop=stop))
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url + health, task)
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def wait_ready(url: str, task: asyncio.Task[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if task.done():
                task.result()
                raise RuntimeError("server exited before it was ready")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")
