"""Blame where it belongs: a customer's bad input is refused before any miner is asked, and a
request a miner's model server refuses as invalid is the request's fault (400 with the reason,
no cool-down, no failover, nothing on the miner's counters); a synthetic request refused that
way is the miner's fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from core.miners import Dispatcher, InProcessStats, Outcome
from core.tokens import load_task_counters
from protocol.catalog import resolve_catalog
from protocol.openai.chat import ChatCompletionRequest, ChatMessage
from scoring import CounterBuffer
from scoring.contenders import ContenderView, PeriodView
from scoring.counters import increments
from scoring.synthetic import SyntheticRequest
from scoring.synthetic.sender import MinerSender
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import CHAT, EMBED, gateway, route
from tests.support.miner_streams import (
    chat_chunks,
    completion_chunks,
    embeddings_body,
    stream_body,
)

REFUSAL = msgspec.json.encode(
    {"error": {"message": "n must be 1 when using greedy\x00 sampling", "type": "BadRequestError"}}
)
CHAT_REQUEST = {
    "model": CHAT,
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 8,
    "n": 2,
    "temperature": 0,
}


def ok(url: str, path: str, body: bytes) -> Canned:
    if path == "/v1/embeddings":
        return Canned(200, [embeddings_body(1, 384)])
    if path == "/v1/completions":
        return Canned(200, stream_body(completion_chunks(4)))
    return Canned(200, stream_body(chat_chunks(4)))


async def test_token_ids_outside_the_vocabulary_are_refused_before_any_miner(tmp: Path) -> None:
    async with gateway(tmp, ok) as gw:
        # LangChain's OpenAIEmbeddings sends token ids; 100000 is past MiniLM's 30,522.
        embedded = await gw.post(
            "/v1/embeddings", {"model": EMBED, "input": [[9906, 1917, 100000]]}
        )
        completed = await gw.post(
            "/v1/completions", {"model": CHAT, "prompt": [1, 2, 2**40], "max_tokens": 4}
        )
        negative = await gw.post("/v1/embeddings", {"model": EMBED, "input": [5, -1]})
        assert gw.miners.calls == []
    assert embedded.status_code == 400
    error = embedded.json()["error"]
    assert error["param"] == "input[0][2]" and error["code"] == "invalid_token_id"
    assert "30521" in error["message"]
    assert completed.status_code == 400
    assert completed.json()["error"]["param"] == "prompt[2]"
    assert negative.status_code == 400 and negative.json()["error"]["code"] == "invalid_value"


async def test_token_ids_inside_the_vocabulary_are_served(tmp: Path) -> None:
    async with gateway(tmp, ok) as gw:
        embedded = await gw.post("/v1/embeddings", {"model": EMBED, "input": [[9906, 30521]]})
        completed = await gw.post(
            "/v1/completions", {"model": CHAT, "prompt": [1, 2, 261], "max_tokens": 4}
        )
    assert embedded.status_code == 200 and completed.status_code == 200


async def test_a_refused_request_is_the_requests_fault(tmp: Path) -> None:
    calls: list[str] = []

    def refuses_greedy_n(url: str, path: str, body: bytes) -> Canned:
        calls.append(url)
        if msgspec.json.decode(body).get("n", 1) > 1:
            return Canned(400, [REFUSAL], headers={"content-type": "application/json"})
        return Canned(200, stream_body(chat_chunks(4)))

    routes = [route(CHAT, uid) for uid in (1, 2, 3)]
    async with gateway(tmp, refuses_greedy_n, routes=routes) as gw:
        for stream in (False, True):
            reply = await gw.post("/v1/chat/completions", {**CHAT_REQUEST, "stream": stream})
            assert reply.status_code == 400, reply.text
            error = reply.json()["error"]
            assert error["code"] == "request_refused"
            assert error["type"] == "invalid_request_error"
            # The server's reason, bounded and printable (miners are untrusted).
            assert error["message"].endswith("n must be 1 when using greedy sampling")
        assert len(calls) == 2  # one miner per request: not retried elsewhere
        for hotkey in {r.hotkey for r in routes}:
            snapshot = gw.stats.snapshot((CHAT, hotkey))
            assert snapshot.cooldown_until == 0.0 and snapshot.error_rate == 0.0
        single = await gw.post("/v1/chat/completions", {**CHAT_REQUEST, "n": 1})
    assert single.status_code == 200


def test_a_refusal_is_not_on_the_contender_counters() -> None:
    assert increments(Outcome.REQUEST_REFUSED, volume=0.0, organic=True) == {}
    buffer = CounterBuffer(counters=None)  # type: ignore[arg-type]
    buffer.record(1, CHAT, "5M", Outcome.REQUEST_REFUSED, organic=True)
    assert not buffer._pending


async def test_a_synthetic_request_refused_is_the_miners_fault() -> None:
    catalog = resolve_catalog("dev")
    records: list[tuple[Any, ...]] = []

    class Counters:
        async def record(self, *key: Any, volume: float = 0.0, organic: bool) -> None:
            records.append(key)

    class Queue:
        async def enqueue(self, job: Any) -> None:
            raise AssertionError("no check job for a failure")

    contender = ContenderView(
        id=1,
        task=CHAT,
        hotkey="5Miner" + "x" * 42,
        uid=3,
        url="http://miner.test",
        capacity=1000.0,
        concurrency=2,
        quota_multiplier=0.04,
        quota=40.0,
    )
    sender = MinerSender(
        dispatcher=Dispatcher(FakeMinerClient(lambda *_: Canned(400, [REFUSAL])), InProcessStats()),
        catalog=catalog,
        counters=Counters(),  # type: ignore[arg-type]
        queue=Queue(),  # type: ignore[arg-type]
        token_counters=load_task_counters(catalog),
    )
    period = PeriodView(
        id=9, started_at=0.0, ends_at=1e12, period_s=60.0, seed=1, contenders=(contender,)
    )
    request = ChatCompletionRequest(
        model=CHAT, messages=[ChatMessage(role="user", content="hi")], max_tokens=8, seed=1
    )
    sent = await sender.send_one(
        period, contender, SyntheticRequest(CHAT, "/v1/chat/completions", request, 300.0)
    )
    assert sent is not None and sent.outcome is Outcome.REJECTED
    assert records == [(9, CHAT, contender.hotkey, Outcome.REJECTED)]
