"""One table of malformed miner streams, read by both paths that judge miners: the gateway
(organic, streamed and aggregated) and the synthetic sender. Both must reject each stream with
the same outcome and the same reason (the attempt's span status, which the one stream reader
sets), since organic and synthetic answers must be judged identically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.miners import Dispatcher, InProcessStats, Outcome
from core.tokens import load_task_counters
from protocol.catalog import resolve_catalog
from protocol.miner import MinerChatChunk
from protocol.openai.chat import ChatCompletionRequest, ChatMessage
from protocol.sse import DONE, SSEParser, data_event
from scoring.contenders import ContenderView, PeriodView
from scoring.synthetic import SyntheticRequest
from scoring.synthetic.sender import MinerSender
from tests.support.fake_miner import Canned, FakeMinerClient
from tests.support.gateway import CHAT, gateway, route
from tests.support.miner_streams import chat_chunks

CATALOG = resolve_catalog("dev")
DECODE = msgspec.json.Decoder(MinerChatChunk)
ENCODE = msgspec.json.Encoder()
MAX_TOKENS = 6

Events = list[bytes]


def answer(events: Events) -> Canned:
    """Two network reads: the first three events (the first token is among them, so the stream
    is committed to this miner), then the rest and ``[DONE]``."""
    return Canned(200, [b"".join(events[:3]), b"".join(events[3:]) + DONE])


def _rewrite(
    events: Events, index: int, change: Callable[[MinerChatChunk], MinerChatChunk]
) -> Events:
    out = list(events)
    [event] = SSEParser().feed(out[index])
    assert event.data is not None
    out[index] = data_event(ENCODE.encode(change(DECODE.decode(event.data))))
    return out


def _choice(**fields: object) -> Callable[[MinerChatChunk], MinerChatChunk]:
    def change(chunk: MinerChatChunk) -> MinerChatChunk:
        choice = msgspec.structs.replace(chunk.choices[0], **fields)
        return msgspec.structs.replace(chunk, choices=[choice])

    return change


def _output_after_finish() -> Events:
    events = chat_chunks(3)
    return [*events[:-1], events[2], events[-1]]  # a token after the finishing chunk


# (name, the miner's SSE events (before [DONE]), outcome, reason)
MALFORMED: list[tuple[str, Events, Outcome, str]] = [
    (
        "choice index out of range",
        _rewrite(chat_chunks(3), 2, _choice(index=3)),
        Outcome.BAD_RESPONSE,
        "choice index 3 out of range",
    ),
    (
        "token ids without logprobs",
        _rewrite(chat_chunks(3), 2, _choice(token_ids=[1, 2])),
        Outcome.BAD_RESPONSE,
        "token ids and logprobs are not aligned",
    ),
    (
        "output after the choice finished",
        _output_after_finish(),
        Outcome.BAD_RESPONSE,
        "output for choice 0 after it finished",
    ),
    (
        "more tokens than max_tokens",
        chat_chunks(MAX_TOKENS + 2),
        Outcome.BAD_RESPONSE,
        "the miner sent more tokens than max_tokens",
    ),
    (
        "ends before the choice finished",
        chat_chunks(3, finish=None),
        Outcome.BAD_RESPONSE,
        "the stream ended before every choice finished",
    ),
    (
        "a malformed event",
        [*chat_chunks(3)[:3], b"data: {not json\n\n"],
        Outcome.BAD_RESPONSE,
        "the miner sent a malformed event",
    ),
    (
        "an error event mid-stream",
        [*chat_chunks(3)[:3], b'data: {"error": {"message": "boom"}}\n\n'],
        Outcome.MIDSTREAM_ERROR,
        "the miner reported an error",
    ),
]
IDS = [name for name, *_ in MALFORMED]
PAYLOAD = {
    "model": CHAT,
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": MAX_TOKENS,
    "seed": 5,
}


def _attempts(exporter: InMemorySpanExporter) -> list[tuple[str, str | None]]:
    return [
        (str(span.attributes["sn19.outcome"]), span.status.description)
        for span in exporter.get_finished_spans()
        if span.name == "miner.attempt"
    ]


async def _organic(tmp: Path, events: Events, *, stream: bool) -> list[tuple[str, str | None]]:
    exporter = InMemorySpanExporter()
    async with gateway(
        tmp, lambda *_: answer(events), routes=[route(CHAT, 1)], span_exporter=exporter
    ) as gw:
        reply = await gw.post("/v1/chat/completions", {**PAYLOAD, "stream": stream})
        if stream:
            assert reply.status_code == 200
            assert b'"error"' in reply.content and b"[DONE]" not in reply.content
        else:
            assert reply.status_code == 502
    return _attempts(exporter)


async def _synthetic(events: Events) -> tuple[Outcome | None, list[tuple[str, str | None]]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = FakeMinerClient(lambda *_: answer(events))
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

    class Sink:
        async def record(self, *key: object, volume: float = 0.0, organic: bool) -> None:
            pass

        async def enqueue(self, job: object) -> None:
            pass

    sender = MinerSender(
        dispatcher=Dispatcher(client, InProcessStats(), tracer=provider.get_tracer("t")),
        catalog=CATALOG,
        counters=Sink(),  # type: ignore[arg-type]
        queue=Sink(),  # type: ignore[arg-type]
        token_counters=load_task_counters(CATALOG),
    )
    period = PeriodView(
        id=9, started_at=0.0, ends_at=1e12, period_s=60.0, seed=1, contenders=(contender,)
    )
    request = ChatCompletionRequest(
        model=CHAT,
        messages=[ChatMessage(role="user", content="hi")],
        max_tokens=MAX_TOKENS,
        seed=5,
    )
    sent = await sender.send_one(
        period, contender, SyntheticRequest(CHAT, "/v1/chat/completions", request, 300.0)
    )
    return (sent.outcome if sent is not None else None), _attempts(exporter)


@pytest.mark.parametrize(("name", "events", "outcome", "reason"), MALFORMED, ids=IDS)
async def test_organic_and_synthetic_reject_alike(
    tmp_path: Path, name: str, events: Events, outcome: Outcome, reason: str
) -> None:
    expected = [(outcome.value, reason)]
    assert await _organic(tmp_path / "stream", events, stream=True) == expected
    assert await _organic(tmp_path / "json", events, stream=False) == expected
    synthetic_outcome, attempts = await _synthetic(events)
    assert synthetic_outcome is outcome
    assert attempts == expected


async def test_a_well_formed_stream_passes_both_paths(tmp_path: Path) -> None:
    events = chat_chunks(MAX_TOKENS)
    assert await _organic_ok(tmp_path, events)
    synthetic_outcome, attempts = await _synthetic(events)
    assert synthetic_outcome is Outcome.OK and attempts == [("ok", None)]


async def _organic_ok(tmp: Path, events: Events) -> bool:
    async with gateway(tmp, lambda *_: answer(events), routes=[route(CHAT, 1)]) as gw:
        reply = await gw.post("/v1/chat/completions", PAYLOAD)
    return reply.status_code == 200
