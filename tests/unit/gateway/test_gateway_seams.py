"""The seams billing plugs into: who the caller is (``Authenticator``), admission before any
miner is asked and exactly one settlement after (``billing.Access``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from billing import Admission, Delivery, KeyContext, Usage
from core.errors import InsufficientQuota
from core.miners import InProcessStats
from gateway import create_app
from gateway.auth import Caller
from protocol.catalog import Task
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import CHAT, EMBED, FakeRedis, StaticRoutes, all_routes, settings_for
from tests.support.miner_streams import chat_chunks, embeddings_body, stream_body


class Recorder:
    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.admitted: list[tuple[str, Usage, KeyContext | None]] = []
        self.settled: list[tuple[Usage, Delivery, str | None]] = []

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        key = KeyContext(key_id=1, account_id=7, name="k1", prefix="sk-sn19-test")
        return Caller(key_id="k1", account_id="acct", key=key)

    async def admit(
        self, key: KeyContext | None, task: Task, estimate: Usage, *, request_id: str
    ) -> Admission:
        if self.refuse:
            raise InsufficientQuota("no credits", headers={"x-should-retry": "false"})
        self.admitted.append((task.id, estimate, key))
        return Admission(
            request_id=request_id,
            estimate=estimate,
            headers={"x-ratelimit-remaining-requests": "9"},
            key=key,
        )

    async def settle(
        self,
        admission: Admission,
        delivered: Usage,
        delivery: Delivery,
        *,
        failure: str | None = None,
        miner_hotkey: str | None = None,
        latency_ms: int = 0,
    ) -> dict[str, str]:
        self.settled.append((delivered, delivery, miner_hotkey))
        return {"x-sn19-cost": "0.000012"}


def answer(url: str, path: str, body: bytes) -> Canned:
    if path == "/v1/embeddings":
        return Canned(200, [embeddings_body(2, 384)])
    if url.endswith("miner-1.test"):
        return Canned(503, [b""])
    return Canned(200, stream_body(chat_chunks(4)))


async def run(tmp: Path, recorder: Recorder, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    app = create_app(
        settings_for(tmp),
        redis=FakeRedis(),
        routes=StaticRoutes(all_routes()),
        miner_client=FakeMinerClient(answer),
        stats=InProcessStats(),
        authenticator=recorder,
        access=recorder,
    )
    async with AsyncTestClient(app) as client:
        responses = [await client.post(path, json=payload) for path, payload in calls]
        await app.state.gateway.drain()
    return responses


CHAT_REQUEST = {
    "model": CHAT,
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 10,
    "n": 2,
}


async def test_admit_then_settle_once_with_what_was_delivered(tmp_path: Path) -> None:
    recorder = Recorder()
    single = {**CHAT_REQUEST, "n": 1}
    json_reply, stream_reply, embed_reply = await run(
        tmp_path,
        recorder,
        [
            ("/v1/chat/completions", single),
            ("/v1/chat/completions", {**single, "stream": True}),
            ("/v1/embeddings", {"model": EMBED, "input": ["a", "b"]}),
        ],
    )
    assert [task for task, _, _ in recorder.admitted] == [CHAT, CHAT, EMBED]
    assert all(key is not None and key.key_id == 1 for _, _, key in recorder.admitted)
    estimate = recorder.admitted[0][1]
    assert estimate.output_tokens == 10 and estimate.input_tokens == 25
    assert estimate.tokens == 35
    assert recorder.admitted[2][1].input_tokens == 6
    usages = [(u.input_tokens, u.output_tokens, d) for u, d, _ in recorder.settled]
    ok = Delivery.OK
    assert sorted(usages) == sorted([(25, 4, ok), (25, 4, ok), (6, 0, ok)])
    assert all(hotkey for _, _, hotkey in recorder.settled)
    for reply in (json_reply, stream_reply, embed_reply):
        assert reply.headers["x-ratelimit-remaining-requests"] == "9"
    assert json_reply.headers["x-sn19-cost"] == "0.000012"  # known before the body left


async def test_refused_admission_asks_no_miner(tmp_path: Path) -> None:
    recorder = Recorder(refuse=True)
    [reply] = await run(tmp_path, recorder, [("/v1/chat/completions", CHAT_REQUEST)])
    assert reply.status_code == 402
    assert reply.json()["error"]["code"] == "insufficient_quota"
    assert reply.headers["x-should-retry"] == "false"
    assert recorder.settled == []


@pytest.mark.parametrize("stream", [False, True])
async def test_failed_dispatch_settles_nothing_and_keeps_the_hold_headers(
    tmp_path: Path, stream: bool
) -> None:
    recorder = Recorder()
    app_routes = [r for r in all_routes() if r.uid == 1]
    app = create_app(
        settings_for(tmp_path),
        redis=FakeRedis(),
        routes=StaticRoutes(app_routes),
        miner_client=FakeMinerClient(answer),
        stats=InProcessStats(),
        authenticator=recorder,
        access=recorder,
    )
    async with AsyncTestClient(app) as client:
        reply = await client.post("/v1/chat/completions", json={**CHAT_REQUEST, "stream": stream})
        await asyncio.sleep(0.05)
        await app.state.gateway.drain()
    assert reply.status_code == 502
    assert reply.headers["x-ratelimit-remaining-requests"] == "9"
    assert [(u.output_tokens, d) for u, d, _ in recorder.settled] == [(0, Delivery.FAILED)]
