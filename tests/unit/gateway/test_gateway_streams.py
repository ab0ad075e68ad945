"""SSE edge cases end to end through the app: what the client gets when miners misbehave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from protocol.sse import DONE, SSEParser, data_event
from tests.support.fake_miner import Canned
from tests.support.gateway import CHAT, gateway, route, with_timeouts
from tests.support.miner_streams import chat_chunks, stream_body

REQUEST = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "stream": True}


def parse(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    parser = SSEParser()
    events = [e.data for e in parser.feed(raw) + parser.close() if e.data is not None]
    done = bool(events) and events[-1] == b"[DONE]"
    return [msgspec.json.decode(e) for e in events if e != b"[DONE]"], done


def always(pieces: list[bytes], **kwargs: Any):
    return lambda url, path, body: Canned(200, pieces, **kwargs)


async def test_stream_relayed_with_done(tmp: Path) -> None:
    async with gateway(tmp, always(stream_body(chat_chunks(4), pieces=3))) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"]
    chunks, done = parse(response.content)
    assert done
    assert "".join(c["delta"].get("content", "") for x in chunks for c in x["choices"]) == (
        "Hello there, how"
    )


async def test_missing_done_completed_when_every_choice_finished(tmp: Path) -> None:
    async with gateway(tmp, always(stream_body(chat_chunks(3), done=False))) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    chunks, done = parse(response.content)
    assert done and not any("error" in c for c in chunks)


async def test_missing_done_and_unfinished_is_an_error_event(tmp: Path) -> None:
    pieces = stream_body(chat_chunks(3, finish=None, usage=False), done=False)
    async with gateway(tmp, always(pieces)) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    chunks, done = parse(response.content)
    assert not done
    assert chunks[-1]["error"]["type"] == "server_error"
    assert chunks[-1]["error"]["code"] == "upstream_error"


async def test_malformed_chunk_mid_stream_is_an_error_event(tmp: Path) -> None:
    events = chat_chunks(4)
    pieces = [
        b"".join(events[:3]),
        data_event(b'{"id": "x", "bogus": true}'),
        b"".join(events[3:]) + DONE,
    ]
    async with gateway(tmp, always(pieces)) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
        assert len(gw.miners.calls) == 1  # after the first token: never another miner
    chunks, done = parse(response.content)
    assert not done
    assert "error" in chunks[-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


async def test_miner_error_event_mid_stream(tmp: Path) -> None:
    events = chat_chunks(4)
    error = data_event(b'{"error": {"message": "boom", "type": "server_error"}}')
    async with gateway(tmp, always([b"".join(events[:3]), error])) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    chunks, done = parse(response.content)
    assert not done and "error" in chunks[-1]
    assert "boom" not in response.text  # miner text never reaches the client


async def test_too_many_tokens_is_an_error_event(tmp: Path) -> None:
    async with gateway(tmp, always(stream_body(chat_chunks(8)))) as gw:
        response = await gw.post("/v1/chat/completions", {**REQUEST, "max_tokens": 5})
    chunks, done = parse(response.content)
    assert not done
    assert "max_tokens" in chunks[-1]["error"]["message"]


async def test_connection_drop_mid_stream_is_an_error_event(tmp: Path) -> None:
    async with gateway(tmp, always(stream_body(chat_chunks(6), pieces=4), drop_after=2)) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    chunks, done = parse(response.content)
    assert not done and "error" in chunks[-1]


async def test_idle_timeout_mid_stream(tmp: Path) -> None:
    pieces = stream_body(chat_chunks(6), pieces=3)
    catalog = with_timeouts(CHAT, idle_s=0.2, first_token_s=1.0)
    async with gateway(tmp, always(pieces, delay_s=0.5), catalog=catalog) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    chunks, done = parse(response.content)
    assert not done
    assert chunks[-1]["error"]["code"] == "upstream_timeout"


async def test_failover_before_first_token(tmp: Path) -> None:
    good = stream_body(chat_chunks(3))
    answers = {
        "http://miner-1.test": Canned(500, [b'{"error": {}}']),
        "http://miner-2.test": Canned(429, [b""], headers={"Retry-After": "3"}),
        "http://miner-3.test": Canned(200, good),
    }
    routes = [route(CHAT, uid) for uid in (1, 2, 3)]
    async with gateway(tmp, lambda url, path, body: answers[url], routes=routes) as gw:
        for _ in range(3):
            response = await gw.post("/v1/chat/completions", REQUEST)
            chunks, done = parse(response.content)
            assert response.status_code == 200 and done
        assert gw.stats.snapshot((CHAT, routes[2].hotkey)).error_rate == 0.0
        urls = [call[0] for call in gw.miners.calls]
    # The 429 cooled miner 2 down for its Retry-After (capped at cooldown_max_s = 1 s).
    assert urls.count("http://miner-2.test") <= 1
    assert urls.count("http://miner-3.test") == 3
    assert gw.stats.snapshot((CHAT, routes[0].hotkey)).last_outcome in (None, "server_error")


async def test_malformed_first_event_fails_over(tmp: Path) -> None:
    answers = {
        "http://miner-1.test": Canned(200, [b"data: not json\n\n"]),
        "http://miner-2.test": Canned(200, stream_body(chat_chunks(2))),
    }
    routes = [route(CHAT, 1), route(CHAT, 2, quality=0.01)]
    async with gateway(tmp, lambda url, path, body: answers[url], routes=routes) as gw:
        gw.app.state.gateway.selector.rng.seed(1)
        response = await gw.post("/v1/chat/completions", REQUEST)
        assert parse(response.content)[1]
        urls = [call[0] for call in gw.miners.calls]
    assert urls[-1] == "http://miner-2.test"


async def test_every_attempt_times_out_is_504(tmp: Path) -> None:
    slow = always(stream_body(chat_chunks(2)), first_delay_s=5)
    async with gateway(tmp, slow, catalog=with_timeouts(CHAT, first_token_s=0.05)) as gw:
        response = await gw.post("/v1/chat/completions", {**REQUEST, "stream": False})
        streamed = await gw.post("/v1/chat/completions", REQUEST)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert response.headers["x-request-id"]
    assert streamed.status_code in (503, 504)  # cooled down after the first round


async def test_no_routes_is_503_with_retry_after(tmp: Path) -> None:
    async with gateway(tmp, always([]), routes=[]) as gw:
        response = await gw.post("/v1/chat/completions", REQUEST)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_capacity"
    assert response.headers["retry-after"] == "5"


async def test_garbage_from_every_miner_is_502(tmp: Path) -> None:
    async with gateway(tmp, always([b"data: {}\n\n"])) as gw:
        response = await gw.post("/v1/chat/completions", {**REQUEST, "stream": False})
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"


async def test_non_stream_fails_over_mid_way(tmp: Path) -> None:
    broken = stream_body(chat_chunks(4, finish=None, usage=False), done=False)
    answers = {
        "http://miner-1.test": Canned(200, broken),
        "http://miner-2.test": Canned(200, stream_body(chat_chunks(4))),
    }
    routes = [route(CHAT, 1), route(CHAT, 2, quality=0.0001)]
    async with gateway(tmp, lambda url, path, body: answers[url], routes=routes) as gw:
        gw.app.state.gateway.selector.rng.seed(3)
        response = await gw.post("/v1/chat/completions", {**REQUEST, "stream": False})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello there, how"
    assert response.headers["x-sn19-attempts"] == "2"
