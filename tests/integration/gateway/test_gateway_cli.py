"""`sn19 gateway` serves create_app(settings) with granian and stops cleanly on SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support.net import free_port
from tests.support.serving import wait_ready
from tests.support.wallets import make_wallet

ROOT = Path(__file__).resolve().parents[3]


async def test_sn19_gateway_serves_and_stops(
    wallet_root: Path, redis_url: str, tmp_path: Path
) -> None:
    make_wallet(wallet_root, "validator")
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[redis]\nurl = "{redis_url}"\n'
        f'[wallet]\nname = "validator"\npath = "{wallet_root}"\n'
        '[gateway]\napi_keys = ["sk-cli-test"]\n[telemetry]\nlog_format = "json"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sn19", "gateway", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    # Ends when the process does, so a gateway that fails to start fails the test at once.
    waiter = asyncio.get_running_loop().create_task(asyncio.to_thread(proc.wait))
    output = b""
    try:
        await wait_ready(url + "/healthz", waiter, timeout=120)
        async with aiohttp.ClientSession() as session:
            async with session.get(
                url + "/v1/models", headers={"Authorization": "Bearer sk-cli-test"}
            ) as response:
                assert response.status == 200
                assert len((await response.json())["data"]) == 3
            async with session.get(url + "/healthz") as response:
                assert await response.json() == {"status": "ok", "redis": True}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        await waiter
        print(output.decode()[-4000:])  # shown by pytest when the test fails
    assert proc.returncode == 0, output.decode()[-2000:]
    assert b'"message":"sn19 gateway listening on http://127.0.0.1:%d' % port in output
