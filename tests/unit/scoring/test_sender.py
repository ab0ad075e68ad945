"""The synthetic sender (``scoring.synthetic.sender``): the gateway's mapping and dispatch to
exactly one contender, the outcome on its counters (organic = false), a check job for each
success, and no send while the miner is at its announced concurrency."""

from __future__ import annotations

from typing import Any

import msgspec

from core.checks import TextResponse, decode_job
from core.miners import Dispatcher, InProcessStats, Outcome
from core.tokens import load_task_counters
from protocol.catalog import resolve_catalog
from protocol.openai.chat import ChatCompletionRequest, ChatMessage
from scoring.contenders import ContenderView, PeriodView
from scoring.synthetic import SyntheticRequest
from scoring.synthetic.sender import MinerSender
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.miner_streams import chat_chunks, stream_body

CHAT = "sn19-tiny-chat"
CATALOG = resolve_catalog("dev")


class Counters:
    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []

    async def record(self, *key: Any, volume: float = 0.0, organic: bool) -> None:
        self.records.append((*key, volume, organic))


class Queue:
    def __init__(self) -> None:
        self.jobs: list[Any] = []

    async def enqueue(self, job: Any) -> None:
        self.jobs.append(job)


def contender(concurrency: int = 2) -> ContenderView:
    return ContenderView(
        id=1,
        task=CHAT,
        hotkey="5Miner" + "x" * 42,
        uid=3,
        url="http://miner.test",
        capacity=1000.0,
        concurrency=concurrency,
        quota_multiplier=0.04,
        quota=40.0,
    )


PERIOD = PeriodView(
    id=9, started_at=0.0, ends_at=1e12, period_s=60.0, seed=1, contenders=(contender(),)
)
REQUEST = SyntheticRequest(
    CHAT,
    "/v1/chat/completions",
    ChatCompletionRequest(
        model=CHAT, messages=[ChatMessage(role="user", content="hi")], max_tokens=16, seed=12345
    ),
    300.0,
)


def sender(answer: Canned, **kwargs: Any) -> tuple[MinerSender, FakeMinerClient, Counters, Queue]:
    client = FakeMinerClient(lambda url, path, body: answer)
    counters, queue = Counters(), Queue()
    return (
        MinerSender(
            dispatcher=Dispatcher(client, InProcessStats()),
            catalog=CATALOG,
            counters=counters,  # type: ignore[arg-type]
            queue=queue,  # type: ignore[arg-type]
            token_counters=load_task_counters(CATALOG),
            **kwargs,
        ),
        client,
        counters,
        queue,
    )


async def test_success_is_counted_and_checked() -> None:
    send, client, counters, queue = sender(Canned(200, stream_body(chat_chunks(5))))
    sent = await send.send_one(PERIOD, contender(), REQUEST)
    assert sent is not None and sent.outcome is Outcome.OK
    (url, path, body) = client.calls[0]
    assert (url, path) == ("http://miner.test", "/v1/chat/completions")
    assert body["seed"] == 12345 and body["stream"] is True and body["logprobs"] is True
    assert body["max_tokens"] == 16
    assert counters.records == [(9, CHAT, contender().hotkey, Outcome.OK, 5.0, False)]
    (job,) = queue.jobs
    job = decode_job(msgspec.msgpack.encode(job))
    assert job.organic is False and job.kind == "chat" and job.miner.uid == 3
    assert isinstance(job.response, TextResponse)
    assert len(job.response.choices[0].token_ids) == 5


async def test_failures_are_counted_without_a_check() -> None:
    send, _, counters, queue = sender(Canned(429, [b"{}"], headers={"Retry-After": "1"}))
    await send.send(PERIOD, contender(), REQUEST)
    assert counters.records[0][3] is Outcome.RATE_LIMITED
    send, _, counters, queue = sender(Canned(200, stream_body(chat_chunks(20))))
    await send.send(PERIOD, contender(), REQUEST)  # 20 tokens for max_tokens 16
    assert counters.records[0][3] is Outcome.BAD_RESPONSE
    assert not queue.jobs


async def test_no_send_while_the_miner_is_at_its_concurrency() -> None:
    send, client, counters, _ = sender(
        Canned(200, stream_body(chat_chunks(3))), defer_s=0.2, poll_s=0.02
    )
    key = (CHAT, contender().hotkey)
    send.stats.acquire(key)
    send.stats.acquire(key)  # two in flight: its announced concurrency
    assert await send.send_one(PERIOD, contender(), REQUEST) is None
    assert send.skipped == 1 and not client.calls and not counters.records


async def test_no_send_while_customers_wait_for_the_task() -> None:
    """Organic requests first: while a gateway's requests wait for a slot of the task (its
    ``OrganicWaiting`` flag is up), synthetic requests for it are held back."""
    from core.miners.waiting import OrganicWaiting
    from tests.support.gateway import FakeRedis

    flags = OrganicWaiting(FakeRedis(), "sn19test:")
    send, client, _, _ = sender(
        Canned(200, stream_body(chat_chunks(3))), organic=flags, defer_s=0.2, poll_s=0.02
    )
    await flags.raise_flag(CHAT)
    assert await send.send_one(PERIOD, contender(), REQUEST) is None
    assert send.skipped == 1 and not client.calls
    await flags.lower_flag(CHAT)
    sent = await send.send_one(PERIOD, contender(), REQUEST)
    assert sent is not None and sent.outcome is Outcome.OK
