"""Every organic attempt lands on its route's contender counters (``gateway.exchange``): the
429 of a failed-over attempt, and the volume of the success in the task's unit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from scoring import CounterBuffer
from tests.support.fake_miner import Canned
from tests.support.gateway import CHAT, EMBED, gateway, route
from tests.support.miner_streams import chat_chunks, embeddings_body, stream_body

PERIOD = 7


class Recorded:
    """Stands in for ``ContenderCounters``: what a flush would write."""

    def __init__(self) -> None:
        self.changes: dict[tuple[int, str, str], dict[str, float]] = {}

    async def add(self, changes: dict[tuple[int, str, str], dict[str, float]]) -> None:
        for key, fields in changes.items():
            mine = self.changes.setdefault(key, {})
            for field, amount in fields.items():
                mine[field] = mine.get(field, 0.0) + amount


def routes() -> list[Any]:
    return [
        msgspec.structs.replace(route(task, uid), period_id=PERIOD)
        for task in (CHAT, EMBED)
        for uid in (1, 2)
    ]


async def test_each_attempt_is_counted_on_its_contender(tmp: Path) -> None:
    calls: list[str] = []

    def answer(url: str, path: str, body: bytes) -> Canned:
        calls.append(url)
        if len(calls) == 1:
            return Canned(429, [b"{}"], headers={"Retry-After": "1"})
        if path == "/v1/embeddings":
            return Canned(200, [embeddings_body(1, 384)])
        return Canned(200, stream_body(chat_chunks(5)))

    async with gateway(tmp, answer, routes=routes()) as gw:
        recorded = Recorded()
        state = gw.app.state.gateway
        state.contenders = CounterBuffer(recorded)  # type: ignore[arg-type]
        response = await gw.post(
            "/v1/chat/completions",
            {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200
        response = await gw.post("/v1/embeddings", {"model": EMBED, "input": "hello there"})
        assert response.status_code == 200
        await state.contenders.flush()

    by_url = {r.url: r.hotkey for r in routes()}
    limited, served = by_url[calls[0]], by_url[calls[1]]
    assert limited != served
    assert recorded.changes[(PERIOD, CHAT, limited)] == {
        "requests": 1,
        "organic_requests": 1,
        "rate_limited": 1,
    }
    assert recorded.changes[(PERIOD, CHAT, served)] == {
        "requests": 1,
        "organic_requests": 1,
        "consumed": 5,
        "organic_volume": 5,
    }
    embedded = [key for key in recorded.changes if key[1] == EMBED]
    assert len(embedded) == 1
    counts = recorded.changes[embedded[0]]
    assert counts["requests"] == 1 and counts["consumed"] > 0
    assert counts["organic_volume"] == counts["consumed"]
