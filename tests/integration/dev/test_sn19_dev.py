"""README's first command, for real: `sn19 dev` starts the whole validator and a local miner
(embedded Redis, SQLite, real models on the CPU), prints a base URL, an API key and the
dashboard's sign-in; the key works through the openai SDK; Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.net import free_port

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
READY = "sn19 dev is running."


def _read_until_ready(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """Everything `sn19 dev` printed up to the end of its ready banner (read in chunks: its
    progress lines are written in pieces)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=1.0):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        output += chunk
        if b"Press Ctrl-C to stop." in output:
            return output.decode()
    raise AssertionError(f"sn19 dev did not become ready:\n{output.decode()[-4000:]}")


def test_sn19_dev_serves_the_api_and_the_dashboard(tmp_path: Path) -> None:
    port, miner_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sn19",
            "dev",
            "--miners",
            "1",
            "--port",
            str(port),
            "--miner-port",
            str(miner_port),
            "--period",
            "20",
            "--data-dir",
            str(tmp_path / "dev"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output = _read_until_ready(proc, timeout=420)
        assert READY in output
        base_url = re.search(r"Base URL\s+(\S+)", output)
        key = re.search(r"API key\s+(sk-sn19-\S+)", output)
        sign_in = re.search(r"Dashboard\s+(\S+)\s+\(sign in: (\S+) / (\S+)\)", output)
        assert base_url and key and sign_in, output
        assert base_url.group(1) == f"http://127.0.0.1:{port}/v1"

        client = openai.OpenAI(base_url=base_url.group(1), api_key=key.group(1), max_retries=3)
        models = {model.id for model in client.models.list()}
        chat_model = next(m for m in models if "chat" in m)
        answer = client.chat.completions.create(
            model=chat_model,
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=8,
            seed=1,
        )
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        page = httpx.get(sign_in.group(1) + "/login", timeout=30)
        assert page.status_code == 200 and "csrf_token" in page.text
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
    assert proc.returncode == 0, rest.decode()[-3000:]
    assert b"Stopped." in rest
