"""README's first command, for real: `sn19 dev` starts the whole validator and a local miner
(embedded Redis, SQLite, real models on the CPU), prints a base URL, an API key and the
dashboard's sign-in; the key works through the openai SDK. Then "Adding your own miner" of
docs/dev.md is run as written (its shell blocks, in order, from the directory `sn19 dev` was
started in; the one change is the miner's port, a free one instead of 8091): a wallet made with
btcli, the miner's settings, serve-axon, the miner itself, and `sn19 scores periods` until the
new miner is a contender; it then has a route. Ctrl-C stops everything."""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import openai
import pytest

from core.redis import create_redis
from core.settings import Settings
from scoring.routes import RouteReader
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


def doc_blocks(doc: Path, section: str) -> list[str]:
    """The ```bash blocks of one section of a Markdown file, dedented."""
    text = doc.read_text("utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end > 0 else len(text)]
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", body, flags=re.S | re.M)
    return [textwrap.dedent(indent + code) for indent, code in blocks]


def run_block(code: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{code}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def add_your_own_miner(site: Path, home: Path, miner_port: int) -> None:
    """docs/dev.md, "Adding your own miner", as written."""
    blocks = doc_blocks(ROOT / "docs" / "dev.md", "Adding your own miner")
    assert len(blocks) == 4, blocks
    create_wallet, configure, run_miner, watch = blocks
    assert "btcli wallet create" in create_wallet and "port = 8091" in configure
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    env["HOME"] = str(home)  # btcli and the miner use ~/.bittensor/wallets
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    run_block(create_wallet, site, env)
    announced = run_block(configure.replace("port = 8091", f"port = {miner_port}"), site, env)
    uid = int(re.search(r"uid (\d+) ", announced).group(1))  # type: ignore[union-attr]
    miner = subprocess.Popen(
        ["bash", "-c", f"exec {run_miner.strip()}"],
        cwd=site,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        contender = None
        while time.monotonic() < deadline and contender is None:
            assert miner.poll() is None, "the miner exited"
            periods = run_block(watch, site, env)
            contender = re.search(rf"uid +{uid} +capacity +([\d.]+)", periods)
            if contender is None:
                time.sleep(3)
        assert contender is not None, f"uid {uid} never became a contender:\n{periods}"
        assert float(contender.group(1)) > 0
        settings = Settings.from_env({}, config_file=str(site / ".sn19/config/validator.toml"))
        hotkey = (site / ".sn19/chain.txt").read_text().splitlines()[uid].split()[0]
        assert asyncio.run(_routed(settings, hotkey), debug=False), "no route to the new miner"
    finally:
        miner.send_signal(signal.SIGINT)
        try:
            miner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            miner.kill()


async def _routed(settings: Settings, hotkey: str) -> bool:
    redis = create_redis(settings.redis.url)
    try:
        reader = RouteReader(redis, prefix=settings.redis.key_prefix, cache_s=0.0)
        for _ in range(60):
            if any(r.hotkey == hotkey for r in await reader.routes("sn19-tiny-chat")):
                return True
            await asyncio.sleep(1.0)
        return False
    finally:
        await redis.aclose()


def test_sn19_dev_serves_the_api_and_the_dashboard(tmp_path: Path) -> None:
    port, miner_port, own_miner_port = free_port(), free_port(), free_port()
    site = tmp_path / "site"  # where the developer works: `.sn19` is created here
    site.mkdir()
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
        ],
        cwd=site,
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
        # Progress lines are written once when the output is not a terminal (no \r redraws).
        assert "\r" not in output, output

        add_your_own_miner(site, tmp_path / "home", own_miner_port)
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
