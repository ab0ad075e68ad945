"""CORS and gzip on ``/v1/*`` against a real gateway and a real miner over real HTTP, and a page on
another origin calling the API with ``fetch`` in a real Chromium (an allowed origin gets the
answer; any other is blocked by the browser)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.integration.gateway.conftest import CHAT, Stack, stack
from tests.support.browser import chromium

pytestmark = pytest.mark.slow

# Origins of the browser test's pages (see ``pages``) and the allowed origin of the other tests.
APP = "http://localhost:8765"
OTHER = "http://localhost:8766"
CHAT_BODY = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
async def pages() -> AsyncIterator[tuple[str, str]]:
    """Two real web servers on loopback, each serving a page: a browser app's origin (allowed)
    and another one (not allowed). Served for real, as Chromium lets only pages in the same
    local address space call a loopback API."""
    app = web.Application()
    app.router.add_get(
        "/", lambda _: web.Response(text="<h1>A browser app</h1>", content_type="text/html")
    )
    runners = []
    origins = []
    for _ in range(2):
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        origins.append(f"http://127.0.0.1:{port}")
    try:
        yield origins[0], origins[1]
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.fixture(scope="module")
async def cors_stack(
    wallet_root: Path, redis_url: str, pages: tuple[str, str]
) -> AsyncIterator[Stack]:
    async with stack(
        wallet_root,
        redis_url,
        miners={"cors1": [CHAT]},
        cors_origins=[APP, pages[0]],
        gzip_min_bytes=300,
        max_body_bytes=64 * 1024,
    ) as running:
        yield running


def _auth(stack: Stack, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_key}", **extra}


async def test_a_preflight_is_answered_for_an_allowed_origin_only(cors_stack: Stack) -> None:
    url = cors_stack.gateway_url + "/v1/chat/completions"
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with aiohttp.ClientSession() as session:
        async with session.options(url, headers={"Origin": APP, **ask}) as reply:
            assert reply.status == 204
            assert reply.headers["access-control-allow-origin"] == APP
            assert "POST" in reply.headers["access-control-allow-methods"]
            assert "authorization" in reply.headers["access-control-allow-headers"]
        async with session.options(url, headers={"Origin": OTHER, **ask}) as reply:
            assert "access-control-allow-origin" not in reply.headers
        # An answer to the allowed origin exposes the headers clients read.
        async with session.post(url, json=CHAT_BODY, headers=_auth(cors_stack, Origin=APP)) as r:
            assert r.status == 200
            assert r.headers["access-control-allow-origin"] == APP
            assert "x-request-id" in r.headers["access-control-expose-headers"]
        # Errors carry it too (a browser app must be able to read a 401).
        async with session.post(url, json=CHAT_BODY, headers={"Origin": APP}) as reply:
            assert reply.status == 401
            assert reply.headers["access-control-allow-origin"] == APP
        # Only /v1/* is cross-origin.
        async with session.get(cors_stack.gateway_url + "/healthz", headers={"Origin": APP}) as r:
            assert "access-control-allow-origin" not in r.headers


async def test_large_json_answers_are_gzipped_for_clients_that_accept_it(
    cors_stack: Stack,
) -> None:
    body = {**CHAT_BODY, "n": 4, "logprobs": True, "top_logprobs": 3}
    url = cors_stack.gateway_url + "/v1/chat/completions"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.post(
            url, json=body, headers=_auth(cors_stack, **{"Accept-Encoding": "gzip"})
        ) as reply:
            assert reply.status == 200
            assert reply.headers["content-encoding"] == "gzip"
            packed = await reply.read()
            assert int(reply.headers["content-length"]) == len(packed)
        answer = json.loads(gzip.decompress(packed))
        assert len(answer["choices"]) == 4
        # Without Accept-Encoding: plain JSON.
        async with session.post(
            url, json=body, headers=_auth(cors_stack, **{"Accept-Encoding": "identity"})
        ) as reply:
            assert "content-encoding" not in reply.headers
            assert len(json.loads(await reply.read())["choices"]) == 4
        # Streams are never buffered for compression.
        async with session.post(
            url,
            json={**CHAT_BODY, "stream": True},
            headers=_auth(cors_stack, **{"Accept-Encoding": "gzip"}),
        ) as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in reply.headers
            assert (await reply.read()).endswith(b"data: [DONE]\n\n")


async def test_gzip_request_bodies_are_read_within_the_body_limit(cors_stack: Stack) -> None:
    url = cors_stack.gateway_url + "/v1/chat/completions"
    headers = _auth(cors_stack, **{"Content-Encoding": "gzip", "Content-Type": "application/json"})
    async with aiohttp.ClientSession() as session:
        packed = gzip.compress(json.dumps(CHAT_BODY).encode())
        async with session.post(url, data=packed, headers=headers) as reply:
            assert reply.status == 200, await reply.text()
            assert (await reply.json())["object"] == "chat.completion"
        async with session.post(url, data=b"not gzip at all", headers=headers) as reply:
            assert reply.status == 400
            assert (await reply.json())["error"]["code"] == "invalid_content_encoding"
        # 1 MiB of spaces compresses to about a kilobyte, but expands beyond the 64 KiB limit.
        bomb = gzip.compress(json.dumps(CHAT_BODY).encode()[:-1] + b" " * (1 << 20) + b"}")
        assert len(bomb) < 4096
        async with session.post(url, data=bomb, headers=headers) as reply:
            assert reply.status == 413
        # The gateway still answers normally afterwards.
        async with session.post(url, json=CHAT_BODY, headers=_auth(cors_stack)) as reply:
            assert reply.status == 200


async def test_a_page_on_another_origin_calls_the_api_with_fetch(
    cors_stack: Stack, pages: tuple[str, str]
) -> None:
    allowed_page, other_page = pages
    script = """async ([url, key, body]) => {
        try {
            const reply = await fetch(url + "/v1/chat/completions", {
                method: "POST",
                headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
                body: JSON.stringify(body),
            });
            const answer = await reply.json();
            return {status: reply.status, object: answer.object,
                    requestId: reply.headers.get("x-request-id")};
        } catch (error) {
            return {error: String(error)};
        }
    }"""
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(allowed_page + "/")
        allowed = await page.evaluate(
            script, [cors_stack.gateway_url, cors_stack.api_key, CHAT_BODY]
        )
        assert allowed.get("status") == 200, allowed
        assert allowed["object"] == "chat.completion"
        assert allowed["requestId"]
        await page.goto(other_page + "/")
        blocked = await page.evaluate(
            script, [cors_stack.gateway_url, cors_stack.api_key, CHAT_BODY]
        )
        assert "error" in blocked and "Failed to fetch" in blocked["error"]
