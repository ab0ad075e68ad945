"""Busy means wait, not 503: when every miner of a task is at its announced concurrency, requests
wait in a short fair queue (``gateway.slots``) and are served as slots free; a full queue or a
wait past its bound is a 503 with ``Retry-After``; one key cannot push others back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.fake_miner import Canned
from tests.support.gateway import AUTH, CHAT, IMAGE, route, served
from tests.support.miner_streams import chat_chunks, images_body, stream_body

REQUEST = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
OTHER_KEY = "sk-test-other-0123456789"


def slow(seconds: float) -> Canned:
    """An answer that takes ``seconds`` to its first token."""
    return Canned(200, stream_body(chat_chunks(4)), first_delay_s=seconds)


async def test_requests_on_one_busy_miner_wait_their_turn(tmp: Path) -> None:
    async with served(tmp, lambda *_: slow(0.2), routes=[route(CHAT, 1, concurrency=1)]) as gw:
        started = time.monotonic()
        replies = await asyncio.gather(
            *(gw.post("/v1/chat/completions", REQUEST) for _ in range(4))
        )
        elapsed = time.monotonic() - started
        metrics = (await gw.get("/metrics")).text
    assert [reply.status_code for reply in replies] == [200] * 4
    assert elapsed >= 0.75  # one at a time: the miner's concurrency held
    assert 'sn19_gateway_queue_wait_seconds_count{model="sn19-tiny-chat"} 3.0' in metrics
    assert 'sn19_gateway_queue_waiting{model="sn19-tiny-chat"} 0.0' in metrics


async def test_four_image_requests_on_one_busy_miner_all_succeed(tmp: Path) -> None:
    answer = Canned(200, [images_body(1, 64, 64)], first_delay_s=0.2)
    async with served(tmp, lambda *_: answer, routes=[route(IMAGE, 1, concurrency=1)]) as gw:
        replies = await asyncio.gather(
            *(
                gw.post("/v1/images/generations", {"model": IMAGE, "prompt": "a cat"})
                for _ in range(4)
            )
        )
    assert [reply.status_code for reply in replies] == [200] * 4, [r.text for r in replies]


async def test_a_full_queue_answers_503_with_retry_after(tmp: Path) -> None:
    async with served(
        tmp,
        lambda *_: slow(0.3),
        routes=[route(CHAT, 1, concurrency=1)],
        queue_size=1,
        queue_per_key=1,
    ) as gw:
        replies = await asyncio.gather(
            *(gw.post("/v1/chat/completions", REQUEST) for _ in range(3))
        )
        metrics = (await gw.get("/metrics")).text
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200, 200, 503]
    [refused] = [reply for reply in replies if reply.status_code == 503]
    assert refused.json()["error"]["code"] == "no_capacity"
    assert refused.headers["retry-after"] == "5"
    assert 'sn19_gateway_queue_refused_total{model="sn19-tiny-chat",reason="full"} 1.0' in metrics


async def test_a_wait_past_its_bound_answers_503(tmp: Path) -> None:
    async with served(
        tmp, lambda *_: slow(0.6), routes=[route(CHAT, 1, concurrency=1)], queue_wait_s=0.2
    ) as gw:
        first, second = await asyncio.gather(
            gw.post("/v1/chat/completions", REQUEST), gw.post("/v1/chat/completions", REQUEST)
        )
    assert sorted((first.status_code, second.status_code)) == [200, 503]


async def test_keys_take_turns(tmp: Path) -> None:
    """Key A queues five requests, then key B sends one: B is served after A's next, not after
    all of A's."""
    done: list[str] = []
    async with served(
        tmp,
        lambda *_: slow(0.1),
        routes=[route(CHAT, 1, concurrency=1)],
        api_keys=[AUTH["Authorization"].removeprefix("Bearer "), OTHER_KEY],
    ) as gw:

        async def send(name: str, headers: dict[str, str] | None = None) -> None:
            reply = await gw.post("/v1/chat/completions", REQUEST, headers=headers or {})
            assert reply.status_code == 200, reply.text
            done.append(name)

        flood = [asyncio.create_task(send(f"a{i}")) for i in range(5)]
        await asyncio.sleep(0.05)  # a0 holds the slot, a1..a4 wait
        late = asyncio.create_task(send("b", {"Authorization": f"Bearer {OTHER_KEY}"}))
        await asyncio.gather(*flood, late)
    assert done.index("b") <= 2, done


async def test_free_miners_skip_the_queue(tmp: Path) -> None:
    async with served(tmp, lambda *_: slow(0.0)) as gw:
        replies = await asyncio.gather(
            *(gw.post("/v1/chat/completions", REQUEST) for _ in range(6))
        )
        metrics = (await gw.get("/metrics")).text
    assert all(reply.status_code == 200 for reply in replies)
    assert "sn19_gateway_queue_wait_seconds_count" not in metrics
