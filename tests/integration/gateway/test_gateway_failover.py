"""Miners going away: before the first token the gateway fails over; after it, the client gets
an in-band error event (the SDK raises ``APIError`` while iterating) and never ``[DONE]``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import openai
import pytest

from core.redis import create_redis
from core.settings import Settings
from gateway import create_app
from inference.instant import InstantTextEngine
from scoring.routes import MinerRoute, RouteStore
from tests.integration.gateway.conftest import API_KEY, CHAT, stack
from tests.support.net import free_port
from tests.support.serving import serve_app, wait_ready
from tests.support.wallets import make_wallet

MESSAGES = [{"role": "user", "content": "Tell me a story."}]
ROOT = Path(__file__).resolve().parents[3]


async def test_requests_keep_succeeding_when_a_miner_dies(
    wallet_root: Path, redis_url: str
) -> None:
    engines = {CHAT: InstantTextEngine(length=16, delay_s=0.002)}
    async with stack(
        wallet_root, redis_url, miners={"f1": engines, "f2": dict(engines), "f3": dict(engines)}
    ) as running:
        client = running.client
        results: list[str] = []

        async def worker(count: int) -> None:
            for index in range(count):
                stream = index % 2 == 0
                if stream:
                    chunks = [
                        c
                        async for c in await client.chat.completions.create(
                            model=CHAT, messages=MESSAGES, stream=True
                        )
                    ]
                    results.append(
                        "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
                    )
                else:
                    done = await client.chat.completions.create(model=CHAT, messages=MESSAGES)
                    results.append(done.choices[0].message.content or "")

        workers = [asyncio.create_task(worker(12)) for _ in range(4)]
        await asyncio.sleep(0.3)
        await running.stop_miner("f1")
        await asyncio.gather(*workers)
        after = [
            await client.chat.completions.create(model=CHAT, messages=MESSAGES) for _ in range(10)
        ]
    assert len(results) == 48 and all(text.startswith("Hello from") for text in results)
    assert all(c.choices[0].finish_reason == "stop" for c in after)


@pytest.fixture
async def subprocess_miner(wallet_root: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    name = f"dying{uuid.uuid4().hex[:6]}"
    wallet = make_wallet(wallet_root, name)
    port = free_port()
    config = wallet_root / f"{name}.toml"
    config.write_text(
        f'catalog = "dev"\ntasks = ["{CHAT}"]\nhost = "127.0.0.1"\nport = {port}\n'
        f'server = "uvicorn"\nlog_level = "WARNING"\n'
        f'[wallet]\nname = "{name}"\nhotkey = "default"\npath = "{wallet_root}"\n'
        f'[task."{CHAT}"]\n'
        'engine = { type = "instant", model = "builtin:instant", '
        "options = { length = 400, delay_s = 0.01 } }\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sn19", "miner", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    waiter = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
    try:
        await wait_ready(url + "/healthz", waiter, timeout=120)
        yield proc, url, wallet.hotkey.ss58_address
    finally:
        waiter.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_miner_dying_mid_stream_is_an_in_band_error(
    wallet_root: Path, redis_url: str, subprocess_miner: tuple[subprocess.Popen[bytes], str, str]
) -> None:
    proc, url, hotkey = subprocess_miner
    prefix = f"sn19test:{uuid.uuid4().hex[:8]}:"
    redis = create_redis(redis_url)
    await RouteStore(redis, prefix=prefix).publish(
        CHAT,
        [
            MinerRoute(
                task=CHAT,
                hotkey=hotkey,
                uid=7,
                url=url,
                concurrency=4,
                volume=1e6,
                period_start=time.time(),
            )
        ],
        ttl_s=600,
    )
    await redis.aclose()
    make_wallet(wallet_root, "validator")
    settings = Settings.from_env(
        {},
        overrides={
            "data_dir": str(wallet_root / "gw-dying"),
            "redis": {"url": redis_url, "key_prefix": prefix},
            "wallet": {"name": "validator", "hotkey": "default", "path": str(wallet_root)},
            "gateway": {"api_keys": [API_KEY]},
        },
    )
    async with serve_app(create_app(settings), server="granian") as gateway_url:
        client = openai.AsyncOpenAI(base_url=gateway_url + "/v1", api_key=API_KEY, max_retries=0)
        stream = await client.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)
        received = 0
        with pytest.raises(openai.APIError) as failure:
            async for chunk in stream:
                received += sum(len(c.delta.content or "") for c in chunk.choices)
                if received > 20 and proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
        assert received > 20
        assert "miner" in str(failure.value).lower()
        # The raw stream: an error event, and no [DONE].
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                gateway_url + "/v1/chat/completions",
                json={"model": CHAT, "messages": MESSAGES, "stream": True},
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as response,
        ):
            body = await response.read()
        # The only miner is dead and cooled down: nothing was sent, so a plain 503.
        assert response.status in (502, 503), body
        assert b"[DONE]" not in body
