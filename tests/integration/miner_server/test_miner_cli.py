"""`sn19 miner` as a subprocess: starts from a TOML file, answers /healthz, exits on SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_http
from tests.support.wallets import make_wallet


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_sn19_miner_serves_and_stops_on_sigint(tmp_path: Path, server: str) -> None:
    wallet = make_wallet(tmp_path / "wallets", "cli-miner", "hk")
    port = free_port()
    config = tmp_path / "miner.toml"
    config.write_text(
        f"""
host = "127.0.0.1"
port = {port}
catalog = "dev"
tasks = ["sn19-tiny-chat"]
server = "{server}"

[wallet]
name = "cli-miner"
hotkey = "hk"
path = "{tmp_path / "wallets"}"

[task."sn19-tiny-chat"]
engine = {{ type = "instant", model = "instant" }}
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "sn19", "miner", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            health = json.loads(response.read())
        assert health == {
            "status": "ok",
            "hotkey": wallet.hotkey.ss58_address,
            "tasks": ["sn19-tiny-chat"],
            "degraded": [],
        }
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert wallet.hotkey.ss58_address in output
    assert f"http://127.0.0.1:{port}" in output
    assert "Traceback" not in output


def test_sn19_miner_reports_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "miner.toml"
    config.write_text('tasks = ["no-such-task"]\n[wallet]\npath = "%s"\n' % (tmp_path / "w"))
    make_wallet(tmp_path / "w", "miner")
    result = subprocess.run(
        [sys.executable, "-m", "sn19", "miner", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no-such-task" in result.stderr
    assert "Traceback" not in result.stderr


class BrokenEngine:
    kind = "chat"

    async def start(self) -> None:
        raise RuntimeError("weights not found")

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
async def test_engine_start_failure_is_a_startup_failure(wallet_root: Path, server: str) -> None:
    import asyncio

    import msgspec

    from inference.instant import InstantTextEngine
    from miner_server import create_app
    from miner_server.server import StartupFailed, serve
    from tests.support.miner import miner_settings

    settings = miner_settings(wallet_root, tasks=["sn19-tiny-chat"], server=server)
    app = create_app(settings, engines={"sn19-tiny-chat": InstantTextEngine()})
    app.dependencies["miner"].dependency().owned_engines.append(BrokenEngine())
    with pytest.raises(StartupFailed):
        await asyncio.wait_for(
            serve(app, msgspec.structs.replace(settings), stop=asyncio.Event()), 30
        )
