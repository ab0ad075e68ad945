"""A miner that forwards to an upstream inference server, over real HTTP: ``/healthz`` says
``degraded`` while the upstream is down (one cached probe, however often it is asked), each
failure kind is logged once per window instead of a traceback per request, and an upstream's
refusal is the miner's 400."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from inference.forward import ForwardTextEngine
from miner_server import create_app
from protocol.catalog import EngineSpec
from protocol.miner import MinerHealth
from tests.integration.miner_server.conftest import CHAT_TASK
from tests.support.miner import SignedClient, miner_settings, serving
from tests.support.net import free_port
from tests.support.upstream import JsonUpstream

CHAT = {"model": CHAT_TASK, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def forward_engine(base_url: str, ttl_s: float = 5.0) -> ForwardTextEngine:
    return ForwardTextEngine(
        EngineSpec(
            type="forward",
            model="m",
            options={"base_url": base_url, "health_ttl_s": ttl_s, "connect_timeout_s": 2},
        )
    )


async def forwarding_miner(
    engine: ForwardTextEngine, wallet_root: Path, validator, miner_hotkey: str
) -> AsyncIterator[SignedClient]:
    settings = miner_settings(wallet_root, tasks=[CHAT_TASK])
    await engine.start()
    try:
        app = create_app(settings, engines={CHAT_TASK: engine})
        async with serving(app, settings) as url, aiohttp.ClientSession() as session:
            yield SignedClient(session, url, validator.hotkey, miner_hotkey)
    finally:
        await engine.close()


async def health(client: SignedClient) -> MinerHealth:
    async with client.session.get(client.base_url + "/healthz") as response:
        assert response.status == 200
        return msgspec.json.decode(await response.read(), type=MinerHealth)


@pytest.fixture
async def down(wallet_root, validator, miner_hotkey) -> AsyncIterator[SignedClient]:
    """A miner whose upstream's port has nothing listening."""
    engine = forward_engine(f"http://127.0.0.1:{free_port()}/v1")
    async for client in forwarding_miner(engine, wallet_root, validator, miner_hotkey):
        yield client


async def test_a_dead_upstream_is_degraded_and_logged_once_per_kind(down, caplog):
    answer = await health(down)
    assert (answer.status, answer.degraded, answer.tasks) == ("degraded", [CHAT_TASK], [CHAT_TASK])

    caplog.set_level(logging.WARNING, logger="miner_server")
    for stream in (False, True) * 10:
        async with down.post("/v1/chat/completions", {**CHAT, "stream": stream}) as response:
            assert response.status == 500
            assert (await response.json())["error"]["code"] == "engine_error"
    lines = [r for r in caplog.records if r.name.startswith("miner_server")]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None and "failed" in lines[0].getMessage()


async def test_health_probes_are_cached(wallet_root, validator, miner_hotkey):
    upstream = JsonUpstream({})
    await upstream.start()
    try:
        engine = forward_engine(upstream.base_url, ttl_s=60.0)
        async for client in forwarding_miner(engine, wallet_root, validator, miner_hotkey):
            answers = await asyncio.gather(*(health(client) for _ in range(40)))
            assert {(a.status, tuple(a.degraded)) for a in answers} == {("ok", ())}
            assert upstream.model_lists == 1
    finally:
        await upstream.close()


async def test_an_upstream_refusal_is_the_miners_400(wallet_root, validator, miner_hotkey):
    def refuse(body):
        error = {"message": "n must be 1 when using greedy sampling, got 2.", "code": 400}
        return 400, msgspec.json.encode({"error": {**error, "type": "BadRequestError"}})

    upstream = JsonUpstream({"chat/completions": refuse})
    await upstream.start()
    try:
        engine = forward_engine(upstream.base_url)
        async for client in forwarding_miner(engine, wallet_root, validator, miner_hotkey):
            async with client.post("/v1/chat/completions", {**CHAT, "stream": True}) as response:
                assert response.status == 400
                error = (await response.json())["error"]
            assert error["type"] == "invalid_request_error" and "greedy" in error["message"]
    finally:
        await upstream.close()
