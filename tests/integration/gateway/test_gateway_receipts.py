"""Receipts verified by the gateway: every delivered answer's receipt (streams and JSON) is
checked off the request path, counted in ``/metrics`` and stored with its check job; a miner
whose signatures do not hold is caught while the customer still gets the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import openai
import pytest

import miner_server.app as miner_app
from core.checks import CheckQueue, decode_job
from core.miners import verify_record
from core.settings import Settings
from gateway import create_app
from inference.instant import InstantTextEngine
from miner_server import create_app as create_miner
from tests.support.checker_suite import Routes
from tests.support.fake_engines import FakeEmbeddingEngine
from tests.support.miner import miner_settings, serving
from tests.support.receipt_cheats import CorruptSigner
from tests.support.redis_fixtures import (  # noqa: F401 - fixtures
    REDIS_URL,
    fixture_redis_client,
    fixture_redis_prefix,
)
from tests.support.serving import serve_app
from tests.support.wallets import make_wallet

pytestmark = pytest.mark.redis

CHAT, EMBED = "sn19-tiny-chat", "all-minilm-l6-v2"
API_KEY = "sk-receipts-0123456789abcdef"


def receipt_counts(metrics: str) -> dict[tuple[str, str], float]:
    counts: dict[tuple[str, str], float] = {}
    for line in metrics.splitlines():
        if line.startswith("sn19_gateway_miner_receipts_total{"):
            labels, _, value = line.partition("} ")
            fields = dict(
                part.split("=", 1) for part in labels.split("{", 1)[1].replace('"', "").split(",")
            )
            counts[(fields["model"], fields["status"])] = float(value)
    return counts


@pytest.mark.parametrize("cheating", [False, True], ids=["honest", "corrupt-signature"])
async def test_receipts_are_verified_and_kept_with_the_check_job(
    cheating: bool,
    tmp_path: Path,
    wallet_root: Path,
    redis_client: Any,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "receipt-cheat" if cheating else "receipt-honest"
    wallet = make_wallet(wallet_root, name)
    make_wallet(wallet_root, "validator")
    if cheating:
        real = miner_app.load_keypair
        monkeypatch.setattr(
            miner_app, "load_keypair", lambda settings: CorruptSigner(real(settings))
        )
    miner = miner_settings(
        wallet_root,
        tasks=[CHAT, EMBED],
        wallet={"name": name, "hotkey": "default", "path": str(wallet_root)},
    )
    engines: dict[str, Any] = {
        CHAT: InstantTextEngine(length=12),
        EMBED: FakeEmbeddingEngine(dimensions=384),
    }
    settings = Settings.from_env(
        {},
        overrides={
            "data_dir": str(tmp_path),
            "redis": {"url": REDIS_URL, "key_prefix": redis_prefix},
            "wallet": {"name": "validator", "hotkey": "default", "path": str(wallet_root)},
            "gateway": {"api_keys": [API_KEY]},
            "checker": {"organic_sample_rate": 1.0},
        },
    )
    routes = Routes()
    async with serving(create_miner(miner, engines=engines), miner) as miner_url:
        for task in (CHAT, EMBED):
            routes.point(task, wallet.hotkey.ss58_address, miner_url)
        app = create_app(settings, routes=routes, redis=redis_client)
        async with serve_app(app) as url:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
            stream = await client.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            streamed = "".join(
                [c.choices[0].delta.content or "" async for c in stream if c.choices]
            )
            whole = await client.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "hi"}]
            )
            vectors = await client.embeddings.create(model=EMBED, input=["a", "b"])
            # The customer got every answer, whatever the receipts.
            assert streamed and whole.choices[0].message.content
            assert len(vectors.data) == 2
            queue = CheckQueue(redis_client, prefix=redis_prefix)
            for _ in range(200):
                if await redis_client.xlen(queue.stream) == 3:
                    break
                await asyncio.sleep(0.02)
            async with (
                aiohttp.ClientSession() as session,
                session.get(url + "/metrics") as response,
            ):
                metrics = await response.text()

    expected = "invalid" if cheating else "valid"
    assert receipt_counts(metrics) == {(CHAT, expected): 2.0, (EMBED, expected): 1.0}
    entries = await redis_client.xrange(queue.stream)
    jobs = [decode_job(fields[b"job"]) for _, fields in entries]
    assert sorted(job.kind for job in jobs) == ["chat", "chat", "embedding"]
    for job in jobs:
        assert job.receipt is not None
        record = msgspec.json.decode(job.receipt)
        assert record["status"] == expected
        assert record["miner"] == wallet.hotkey.ss58_address
        assert record["nonce"].isdigit() and len(record["sha256"]) == 64
        assert len(record["signature"]) == 128
        assert verify_record(job.receipt) is (not cheating)  # anyone can re-check it
