"""Organic sampling end to end: the gateway's completion hub with the check sampler, a miner
running the dev chat model, and a checker worker scoring what the sampler enqueued."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import msgspec
import openai
import pytest
from sqlalchemy import select

from checker.metrics import CheckerMetrics
from checker.references import ReferencePool
from checker.worker import CheckWorker
from core.checks import CheckQueue, TextResponse, decode_job
from core.db.engine import Database
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult
from core.settings import Settings
from gateway import create_app
from gateway.checks import install_check_sampler
from gateway.hooks import CompletionHub
from inference.transformers_text import TransformersTextEngine
from miner_server import create_app as create_miner
from protocol.catalog import resolve_catalog
from tests.support.checker_suite import Routes
from tests.support.checker_workloads import constrained
from tests.support.miner import miner_settings, serving
from tests.support.redis_fixtures import REDIS_URL
from tests.support.serving import serve_app
from tests.support.wallets import make_wallet

pytestmark = pytest.mark.redis

CHAT = "sn19-tiny-chat"
API_KEY = "sk-checker-sampling-0123456789"


async def test_sampled_answers_are_checked(
    tmp_path: Path, wallet_root: Path, redis_client, redis_prefix, fresh_sqlite_url
) -> None:
    settings = Settings.from_env(
        {},
        overrides={
            "data_dir": str(tmp_path),
            "redis": {"url": REDIS_URL, "key_prefix": redis_prefix},
            "wallet": {"name": "validator", "hotkey": "default", "path": str(wallet_root)},
            "gateway": {"api_keys": [API_KEY]},
            "checker": {"organic_sample_rate": 1.0, "block_ms": 100},
        },
    )
    make_wallet(wallet_root, "validator")
    miner_wallet = make_wallet(wallet_root, "sampled-miner")
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    hub = CompletionHub()
    sampler = install_check_sampler(hub, queue, settings)
    assert sampler is not None
    engine = TransformersTextEngine("builtin:tiny-llama")
    await engine.start()
    routes = Routes()
    miner = miner_settings(
        wallet_root,
        tasks=[CHAT],
        wallet={"name": "sampled-miner", "hotkey": "default", "path": str(wallet_root)},
    )
    async with serving(create_miner(miner, engines={CHAT: engine}), miner) as miner_url:
        routes.point(CHAT, miner_wallet.hotkey.ss58_address, miner_url)
        app = create_app(settings, routes=routes, hooks=hub, redis=redis_client)
        async with serve_app(app) as url:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
            stream = await client.chat.completions.create(
                model=CHAT,
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=24,
                temperature=0.9,
                stream=True,
                extra_headers={"x-request-id": "sampled-1"},
            )
            async for _ in stream:
                pass
            await client.completions.create(
                model=CHAT,
                prompt="Once upon a time",
                max_tokens=12,
                temperature=0.0,
                extra_headers={"x-request-id": "sampled-2"},
            )
            # A constrained request: the job carries its tools and tool_choice, and the checker
            # replays the grammar the miner decoded under.
            forced = constrained(1, "named_tool", temperature=0.7).body
            reply = await client.chat.completions.create(
                **forced, extra_headers={"x-request-id": "sampled-3"}
            )
            assert reply.choices[0].message.tool_calls
            for _ in range(100):
                if sampler.enqueued == 3:
                    break
                await asyncio.sleep(0.05)
    assert sampler.enqueued == 3
    entries = await redis_client.xrange(queue.stream)
    jobs = [decode_job(fields[b"job"]) for _, fields in entries]
    assert [(j.kind, j.request_id, j.organic) for j in jobs] == [
        ("chat", "sampled-1", True),
        ("completion", "sampled-2", True),
        ("chat", "sampled-3", True),
    ]
    assert all(j.miner.hotkey == miner_wallet.hotkey.ss58_address for j in jobs)
    request = msgspec.json.decode(jobs[0].request)
    assert request["seed"] is not None and request["stream"] is True  # as the miner got it
    assert isinstance(jobs[0].response, TextResponse) and jobs[0].receipt
    tooled = msgspec.json.decode(jobs[2].request)
    assert tooled["tool_choice"] == forced["tool_choice"] and tooled["tools"] == forced["tools"]

    db = Database.from_url(fresh_sqlite_url)
    worker = CheckWorker(
        queue=queue,
        db=db,
        catalog=resolve_catalog("dev"),
        pool=ReferencePool(engines={CHAT: engine}),
        settings=settings.checker,
        consumer=f"t-{uuid.uuid4().hex[:6]}",
        metrics=CheckerMetrics(),
    )
    await queue.ensure_group()
    while await worker.step(block_ms=100):
        pass
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    CheckJobRecord.request_id,
                    CheckResult.quality,
                    CheckResult.work,
                    CheckJobRecord.reason,
                )
                .join(CheckResult, CheckResult.id == CheckJobRecord.result_id)
                .order_by(CheckJobRecord.request_id)
            )
        ).all()
    assert [(r.request_id, r.quality, r.reason) for r in rows] == [
        ("sampled-1", 1.0, ""),
        ("sampled-2", 1.0, ""),
        ("sampled-3", 1.0, ""),
    ]
    assert rows[0].work == len(jobs[0].response.choices[0].token_ids)
    assert b"sn19_checker_jobs_total" in worker.metrics.render()
    await db.dispose()
    await engine.close()
