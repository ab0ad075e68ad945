"""The SSE response's life: keep-alives while the first token is slow, the status decided as
late as possible, and a client disconnect cancelling the miner call (real sockets)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from core.miners import InProcessStats
from gateway import create_app
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import (
    AUTH,
    CHAT,
    FakeRedis,
    StaticRoutes,
    all_routes,
    gateway,
    settings_for,
    with_timeouts,
)
from tests.support.miner_streams import chat_chunks, stream_body
from tests.support.serving import serve_app

REQUEST = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def test_keepalives_while_the_first_token_is_slow(tmp_path: Path) -> None:
    slow = lambda *a: Canned(200, stream_body(chat_chunks(2)), first_delay_s=0.35)  # noqa: E731
    async with gateway(tmp_path, slow, keepalive_s=0.1) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    body = response.content
    assert response.status_code == 200
    assert body.startswith(b": keep-alive\n\n")
    assert body.count(b": keep-alive") >= 2
    assert body.endswith(b"data: [DONE]\n\n")


async def test_failure_after_keepalives_is_in_band(tmp_path: Path) -> None:
    slow = lambda *a: Canned(200, stream_body(chat_chunks(2)), first_delay_s=5)  # noqa: E731
    catalog = with_timeouts(CHAT, first_token_s=0.15)
    async with gateway(tmp_path, slow, keepalive_s=0.1, catalog=catalog, max_attempts=2) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    body = response.content
    assert response.status_code == 200  # the headers left with the first keep-alive
    assert body.startswith(b": keep-alive")
    assert b'"code":"upstream_timeout"' in body
    assert b"[DONE]" not in body


async def test_fast_failure_is_a_plain_http_error(tmp_path: Path) -> None:
    async with gateway(tmp_path, lambda *a: Canned(500, [b""]), keepalive_s=5) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]


async def test_client_disconnect_cancels_the_miner_call(tmp_path: Path) -> None:
    pieces = stream_body(chat_chunks(200), pieces=200)
    miners = FakeMinerClient(lambda *a: Canned(200, pieces, delay_s=0.02))
    stats = InProcessStats()
    app = create_app(
        settings_for(tmp_path),
        redis=FakeRedis(),
        miner_client=miners,
        stats=stats,
        routes=StaticRoutes(all_routes()),
    )
    async with serve_app(app, server="granian") as url, aiohttp.ClientSession() as session:
        response = await session.post(url + "/v1/chat/completions", json=REQUEST, headers=AUTH)
        await response.content.readline()
        await asyncio.sleep(0.2)
        response.close()  # the client goes away mid-stream
        for _ in range(100):
            if miners.streams[0].closed:
                break
            await asyncio.sleep(0.02)
        assert miners.streams[0].closed
        assert all(stats.snapshot((CHAT, r.hotkey)).in_flight == 0 for r in all_routes())
        # The gateway still serves.
        async with session.post(
            url + "/v1/chat/completions", json={**REQUEST, "stream": False}, headers=AUTH
        ) as again:
            assert again.status == 200
