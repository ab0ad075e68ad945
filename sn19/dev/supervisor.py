"""Child processes of `sn19 dev`: start, wait until healthy, stop (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    health_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C goes to `sn19 dev`, which stops children in order
        )
        log.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        if self.health_url is None:
            return self.alive
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def sn19_argv(*args: str) -> list[str]:
    """Run a sibling `sn19` subcommand with this interpreter (works from a venv or `-m`)."""
    return [sys.executable, "-m", "sn19", *args]


class StartupFailed(RuntimeError):
    pass


def wait_healthy(
    child: Child, *, timeout: float, on_tick: Callable[[float], None] | None = None
) -> float:
    """Block until `child` is healthy; return seconds waited. Raise StartupFailed if it dies."""
    started = time.monotonic()
    while True:
        waited = time.monotonic() - started
        if not child.alive:
            raise StartupFailed(f"{child.name} exited during start-up:\n{child.tail()}")
        if child.healthy():
            return waited
        if waited > timeout:
            raise StartupFailed(f"{child.name} not healthy after {timeout:.0f}s:\n{child.tail()}")
        if on_tick is not None:
            on_tick(waited)
        time.sleep(0.25)
