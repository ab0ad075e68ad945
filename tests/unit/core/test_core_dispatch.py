"""The attempt loop: failover before the first token, the error when every attempt failed,
stats and attempt records."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from core.errors import NoCapacity, UpstreamError, UpstreamTimeout
from core.miners import (
    Dispatcher,
    DispatchState,
    InProcessStats,
    MinerConnectError,
    Outcome,
    StreamFailure,
)
from protocol.catalog import Catalog
from protocol.miner import MinerChatChunk, MinerEmbeddingList
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import route
from tests.support.miner_streams import chat_chunks, embeddings_body, stream_body

CHUNK = msgspec.json.Decoder(MinerChatChunk)


def ready(chunk: MinerChatChunk) -> bool:
    return any(c.token_ids or c.finish_reason for c in chunk.choices)


def setup(
    dev_catalog: Catalog,
    answers: dict[str, Canned] | list[Canned],
    count: int = 3,
    max_attempts: int = 3,
    first_token_s: float = 1.0,
    deadline_s: float = 30.0,
) -> Any:
    task = dev_catalog.get("sn19-tiny-chat")
    task = msgspec.structs.replace(
        task, timeouts=msgspec.structs.replace(task.timeouts, first_token_s=first_token_s)
    )
    routes = [route(task.id, uid) for uid in range(1, count + 1)]
    if isinstance(answers, list):
        sequence = iter(answers)
        client = FakeMinerClient(lambda *a: next(sequence))
    else:
        client = FakeMinerClient(lambda url, path, body: answers[url])
    stats = InProcessStats(cooldown_base_s=10, cooldown_max_s=60)
    dispatcher = Dispatcher(client, stats)
    state = DispatchState(
        task, routes, max_attempts=max_attempts, deadline=time.monotonic() + deadline_s
    )
    return dispatcher, state, client, stats, routes


async def open_chat(dispatcher: Dispatcher, state: DispatchState) -> Any:
    return await dispatcher.open_stream(
        state, "/v1/chat/completions", b"{}", decode=CHUNK.decode, ready=ready
    )


async def test_first_miner_serves(dev_catalog: Catalog) -> None:
    dispatcher, state, client, stats, routes = setup(
        dev_catalog, [Canned(200, stream_body(chat_chunks(3), pieces=4))]
    )
    opened = await open_chat(dispatcher, state)
    assert opened.endpoint.hotkey == routes[0].hotkey
    assert any(ready(item) for item in opened.first)
    items = list(opened.first)
    while batch := await opened.next_batch(1.0):
        items.extend(batch)
    assert opened.done
    opened.finish(Outcome.OK, units=3)
    opened.finish(Outcome.BAD_RESPONSE)  # idempotent
    snap = stats.snapshot((state.task.id, routes[0].hotkey))
    assert snap.in_flight == 0 and snap.last_outcome is Outcome.OK and snap.ttft_s is not None
    assert [a.outcome for a in state.attempts] == [Outcome.OK]
    assert client.streams[0].closed


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (Canned(error=MinerConnectError("refused")), Outcome.CONNECT_ERROR),
        (Canned(500, [b"oops"]), Outcome.SERVER_ERROR),
        (Canned(429, [b""], headers={"Retry-After": "4"}), Outcome.RATE_LIMITED),
        (Canned(401, [b"{}"]), Outcome.REJECTED),
        (Canned(200, [b"data: {not json}\n\n"]), Outcome.BAD_RESPONSE),
        (Canned(200, [b'data: {"error": {"message": "x"}}\n\n']), Outcome.MIDSTREAM_ERROR),
        (Canned(200, [b"data: [DONE]\n\n"]), Outcome.BAD_RESPONSE),
        (Canned(200, stream_body(chat_chunks(2)), first_delay_s=2), Outcome.TIMEOUT),
    ],
)
async def test_failover_before_the_first_token(
    dev_catalog: Catalog, failure: Canned, outcome: Outcome
) -> None:
    dispatcher, state, _, stats, routes = setup(
        dev_catalog, [failure, Canned(200, stream_body(chat_chunks(2)))], first_token_s=0.1
    )
    opened = await open_chat(dispatcher, state)
    assert opened.endpoint.hotkey == routes[1].hotkey
    assert [a.outcome for a in state.attempts] == [outcome, None]  # the second is open
    failed = stats.snapshot((state.task.id, routes[0].hotkey))
    assert failed.in_flight == 0 and failed.error_rate > 0
    assert not stats.available((state.task.id, routes[0].hotkey), time.monotonic())
    if outcome is Outcome.RATE_LIMITED:
        assert failed.cooldown_until - time.monotonic() == pytest.approx(4, abs=0.5)
    opened.finish(Outcome.OK)


async def test_every_attempt_timing_out_is_504(dev_catalog: Catalog) -> None:
    slow = Canned(200, stream_body(chat_chunks(1)), first_delay_s=5)
    dispatcher, state, *_ = setup(dev_catalog, [slow] * 3, first_token_s=0.02)
    with pytest.raises(UpstreamTimeout):
        await open_chat(dispatcher, state)
    assert len(state.attempts) == 3


async def test_attempts_are_bounded(dev_catalog: Catalog) -> None:
    dispatcher, state, client, *_ = setup(
        dev_catalog, [Canned(500, [b""])] * 5, count=5, max_attempts=2
    )
    with pytest.raises(UpstreamError):
        await open_chat(dispatcher, state)
    assert len(client.calls) == 2


async def test_no_candidates_is_503_and_all_429_is_503(dev_catalog: Catalog) -> None:
    dispatcher, state, *_ = setup(dev_catalog, [], count=0)
    with pytest.raises(NoCapacity) as empty:
        await open_chat(dispatcher, state)
    assert empty.value.headers["Retry-After"] == "5"
    dispatcher, state, *_ = setup(dev_catalog, [Canned(429, [b""])] * 3)
    with pytest.raises(NoCapacity):
        await open_chat(dispatcher, state)


async def test_expired_deadline_stops_trying(dev_catalog: Catalog) -> None:
    dispatcher, state, client, *_ = setup(dev_catalog, [Canned(500, [b""])] * 3, deadline_s=-1)
    with pytest.raises(NoCapacity):
        await open_chat(dispatcher, state)
    assert client.calls == []


async def test_after_the_first_token_failures_are_stream_failures(dev_catalog: Catalog) -> None:
    pieces = stream_body(chat_chunks(6), pieces=6)
    dispatcher, state, client, *_ = setup(dev_catalog, [Canned(200, pieces, drop_after=2)])
    opened = await open_chat(dispatcher, state)
    with pytest.raises(StreamFailure) as failure:
        while await opened.next_batch(1.0):
            pass
    assert failure.value.outcome is Outcome.MIDSTREAM_ERROR
    opened.finish(failure.value.outcome)
    assert len(client.calls) == 1


async def test_json_call_fails_over_on_a_rejected_answer(dev_catalog: Catalog) -> None:
    decoder = msgspec.json.Decoder(MinerEmbeddingList)
    answers = [
        Canned(200, [b"garbage"]),
        Canned(200, [embeddings_body(1, 4)]),
        Canned(200, [embeddings_body(2, 4)]),
    ]
    dispatcher, state, *_ = setup(dev_catalog, answers)

    async def check(result: MinerEmbeddingList) -> None:
        if len(result.data) != 2:
            raise ValueError("wrong count")

    delivered = await dispatcher.call(
        state, "/v1/embeddings", b"{}", decode=decoder.decode, check=check
    )
    assert len(delivered.value.data) == 2
    assert [a.outcome for a in state.attempts] == [
        Outcome.BAD_RESPONSE,
        Outcome.BAD_RESPONSE,
        Outcome.OK,
    ]


async def test_receipt_comment_is_kept(dev_catalog: Catalog) -> None:
    pieces = stream_body(chat_chunks(2)) + [b": receipt 0xabc\n\n"]
    dispatcher, state, *_ = setup(dev_catalog, [Canned(200, pieces)])
    opened = await open_chat(dispatcher, state)
    while await opened.next_batch(1.0):
        pass
    opened.finish(Outcome.OK)
    assert opened.receipt is not None and opened.receipt.signature == "0xabc"
    assert opened.receipt.check() == "invalid"  # not a signature over this stream
