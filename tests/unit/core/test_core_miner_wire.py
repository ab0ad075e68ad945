"""Signing (verifies with the SDK), the fast SSE parser (same events as protocol's), and the
HTTP client against a real server on a real port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from bittensor import http_auth
from hypothesis import given, settings
from hypothesis import strategies as st

from core.miners import (
    MinerConnectError,
    MinerProtocolError,
    MinerTimeout,
    RawMinerClient,
    RequestSigner,
)
from protocol.sse import SSEError, SSEParser
from tests.support.net import free_port
from tests.support.serving import serve_app
from tests.support.wallets import make_wallet


@pytest.fixture(scope="module")
def keys(wallet_root: Path) -> tuple[RequestSigner, str]:
    signer = RequestSigner.from_wallet(make_wallet(wallet_root, "validator"))
    receiver = make_wallet(wallet_root, "miner").hotkey.ss58_address
    return signer, receiver


def test_signed_headers_verify_with_the_sdk(keys: tuple[RequestSigner, str]) -> None:
    signer, receiver = keys
    body = b'{"model": "x"}'
    first = signer.headers(method="POST", path="/v1/chat/completions", body=body, receiver=receiver)
    second = signer.headers(
        method="POST", path="/v1/chat/completions", body=body, receiver=receiver
    )
    assert first["X-Bittensor-Nonce"] != second["X-Bittensor-Nonce"]
    caller = http_auth.verify(
        first,
        body,
        method="POST",
        path="/v1/chat/completions",
        self_hotkey_ss58=receiver,
        nonce_store=http_auth.InMemoryNonceStore(),
    )
    assert caller.hotkey_ss58 == signer.hotkey
    with pytest.raises(http_auth.AuthError):
        http_auth.verify(
            first,
            body + b" ",
            method="POST",
            path="/v1/chat/completions",
            self_hotkey_ss58=receiver,
            nonce_store=http_auth.InMemoryNonceStore(),
        )


EVENT = st.one_of(
    st.binary(max_size=30)
    .filter(lambda b: b"\n" not in b and b"\r" not in b)
    .map(lambda b: b"data: " + b + b"\n\n"),
    st.just(b": keep-alive\n\n"),
    st.just(b"data: a\ndata: b\n\n"),
    st.just(b"event: x\ndata: y\r\n\r\n"),
    st.just(b"\n\n"),
)


@settings(max_examples=300)
@given(st.lists(EVENT, max_size=12), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_fast_parser_gives_the_same_events(events: list[bytes], cuts: list[int]) -> None:
    raw = b"".join(events)
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]

    def run(parser: SSEParser) -> list[tuple[bytes | None, bytes | None]]:
        out = []
        for piece in pieces:
            out.extend(parser.feed(piece))
        out.extend(parser.close())
        return [(e.data, e.comment) for e in out]

    class LineByLine(SSEParser):
        def _feed_simple(self, chunk: bytes) -> None:
            return None

    assert run(SSEParser()) == run(LineByLine())


def test_fast_parser_keeps_the_size_bound() -> None:
    parser = SSEParser(max_line=16)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 40)


SSE = b"".join(b'data: {"n": %d}\n\n' % i for i in range(5)) + b"data: [DONE]\n\n"


async def miner_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if path == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if path == "/echo":
        signed = "x-bittensor-signature" in headers
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b'{"signed": %s, "size": %d}'
                % (b"true" if signed else b"false", len(body)),
            }
        )
    elif path == "/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for index in range(0, len(SSE), 7):
            await send(
                {"type": "http.response.body", "body": SSE[index : index + 7], "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await asyncio.sleep(2)
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 100_000})
    else:
        await send(
            {"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"7")]}
        )
        await send({"type": "http.response.body", "body": b"busy"})


@pytest.fixture
async def client(keys: tuple[RequestSigner, str]) -> Any:
    client = RawMinerClient(keys[0], connect_timeout=1.0)
    yield client
    await client.close()


async def test_clients_post_stream_and_errors(client: Any, keys: tuple[RequestSigner, str]) -> None:
    receiver = keys[1]
    async with serve_app(miner_app) as url:
        for _ in range(3):  # keep-alive connections are reused
            response = await client.post(url, "/echo", b"x" * 1000, receiver=receiver, timeout=5)
            assert response.status == 200
            assert response.body == b'{"signed": true, "size": 1000}'
        stream = await client.open_stream(url, "/stream", b"{}", receiver=receiver, timeout=5)
        assert stream.status == 200
        data = []
        while events := await stream.next_events(5):
            data.extend(e.data for e in events)
        stream.close()
        assert data[-1] == b"[DONE]" and len(data) == 6
        busy = await client.open_stream(url, "/busy", b"{}", receiver=receiver, timeout=5)
        assert busy.status == 503 and busy.headers["Retry-After"] == "7"
        assert await busy.read_body(5) == b"busy"
        with pytest.raises(MinerTimeout):
            await client.post(url, "/slow", b"{}", receiver=receiver, timeout=0.2)
        with pytest.raises(MinerProtocolError):
            await client.post(url, "/big", b"{}", receiver=receiver, timeout=5, max_bytes=1000)
        again = await client.post(url, "/echo", b"", receiver=receiver, timeout=5)
        assert again.status == 200
    with pytest.raises(MinerConnectError):
        await client.post(
            f"http://127.0.0.1:{free_port()}", "/echo", b"", receiver=receiver, timeout=5
        )


async def test_raw_client_reuses_and_replaces_closed_connections(
    keys: tuple[RequestSigner, str],
) -> None:
    client = RawMinerClient(keys[0])
    port = free_port()
    async with serve_app(miner_app, port=port) as url:
        await client.post(url, "/echo", b"", receiver=keys[1], timeout=5)
        idle = next(iter(client._pool.idle.values()))
        assert len(idle) == 1
    # The server went away (closing the idle connection); a new one answers on the same port.
    async with serve_app(miner_app, port=port) as url:
        response = await client.post(url, "/echo", b"", receiver=keys[1], timeout=5)
        assert response.status == 200
    await client.close()
