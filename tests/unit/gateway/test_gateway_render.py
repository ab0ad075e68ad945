"""Chunk rendering: the client sees the gateway's id/model/created, the role once, logprobs only
when asked (trimmed), never token_ids, and a usage chunk when asked. (The stream rules the
chunks pass first are tested in tests/unit/core/test_core_stream_rules.py.)"""

from __future__ import annotations

import msgspec

from core.miners import TextRules
from gateway.chat.render import ChatRenderer, ChatRenderOptions
from gateway.completions.render import CompletionRenderer, CompletionRenderOptions
from protocol.miner import MinerChatChunk, MinerCompletionChunk
from protocol.sse import SSEParser
from tests.support.miner_streams import chat_chunks, completion_chunks

CHAT = msgspec.json.Decoder(MinerChatChunk)
COMPLETION = msgspec.json.Decoder(MinerCompletionChunk)


def events(raw: bytes) -> list[dict]:
    parser = SSEParser()
    return [msgspec.json.decode(e.data) for e in parser.feed(raw) + parser.close() if e.data]


def decoded(pieces: list[bytes], decoder: msgspec.json.Decoder) -> list:
    return [decoder.decode(event.data) for event in SSEParser().feed(b"".join(pieces))]


def chat_options(**overrides) -> ChatRenderOptions:
    fields = dict(
        id="chatcmpl-gw",
        created=1234,
        model="sn19-tiny-chat",
        n=1,
        logprobs=False,
        top_logprobs=0,
        include_usage=False,
        prompt_tokens=25,
        stream=True,
    )
    fields.update(overrides)
    return ChatRenderOptions(**fields)


def checked(chunks: list, n: int = 1) -> tuple[list, TextRules]:
    """The chunks after the stream rules (as the gateway renders them), and the rules' output."""
    rules = TextRules(n=n, max_tokens=16)
    rules.check(chunks)
    rules.finish()
    return chunks, rules


def test_chat_chunks_are_rewritten_and_miner_fields_dropped() -> None:
    relay = ChatRenderer(chat_options())
    chunks, rules = checked(decoded(chat_chunks(3, top=3), CHAT))
    out = relay.feed(chunks)
    sent = events(out + relay.finish(rules.completion_tokens))
    assert {chunk["id"] for chunk in sent} == {"chatcmpl-gw"}
    assert {chunk["model"] for chunk in sent} == {"sn19-tiny-chat"}
    assert {chunk["created"] for chunk in sent} == {1234}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in sent)
    assert b"token_ids" not in out
    assert all(choice["logprobs"] is None for chunk in sent for choice in chunk["choices"])
    roles = [c["delta"].get("role") for chunk in sent for c in chunk["choices"]]
    assert roles[0] == "assistant" and roles.count("assistant") == 1
    assert "usage" not in sent[-1]
    assert sent[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["delta"].get("content", "") for chunk in sent for c in chunk["choices"])
    assert text == "Hello there,"
    assert rules.output.choices[0].token_ids == [100, 101, 102]
    assert rules.output.choices[0].text == "Hello there,"
    assert rules.completion_tokens == 3


def test_chat_logprobs_when_asked_trimmed_to_top_logprobs() -> None:
    relay = ChatRenderer(chat_options(logprobs=True, top_logprobs=1))
    sent = events(relay.feed(decoded(chat_chunks(2, top=4), CHAT)))
    entries = [
        e
        for chunk in sent
        for c in chunk["choices"]
        if c["logprobs"]
        for e in c["logprobs"]["content"]
    ]
    assert [e["token"] for e in entries] == ["Hello", " there"]
    assert all(len(e["top_logprobs"]) == 1 for e in entries)


def test_chat_usage_chunk_when_include_usage() -> None:
    relay = ChatRenderer(chat_options(include_usage=True, prompt_tokens=25))
    chunks, rules = checked(decoded(chat_chunks(4), CHAT))
    sent = events(relay.feed(chunks) + relay.finish(rules.completion_tokens))
    assert all(chunk["usage"] is None for chunk in sent[:-1])
    assert sent[-1]["choices"] == []
    assert sent[-1]["usage"] == {"prompt_tokens": 25, "completion_tokens": 4, "total_tokens": 29}


def test_chat_aggregate_response() -> None:
    relay = ChatRenderer(chat_options(stream=False, logprobs=True, top_logprobs=0, n=2))
    chunks, rules = checked(decoded(chat_chunks(3, n=2, top=2), CHAT), n=2)
    assert relay.feed(chunks) == b""
    body = msgspec.json.decode(relay.response(rules.output))
    assert body["object"] == "chat.completion"
    assert [c["message"]["content"] for c in body["choices"]] == ["Hello there,"] * 2
    assert all(
        len(e["top_logprobs"]) == 0 for c in body["choices"] for e in c["logprobs"]["content"]
    )
    assert body["usage"]["completion_tokens"] == 6


def completion_options(**overrides) -> CompletionRenderOptions:
    fields = dict(
        id="cmpl-gw",
        created=99,
        model="sn19-tiny-chat",
        n=1,
        logprobs=None,
        include_usage=False,
        prompt_tokens=3,
        stream=True,
    )
    fields.update(overrides)
    return CompletionRenderOptions(**fields)


def test_completion_chunks_rewritten_logprobs_trimmed_and_offsets() -> None:
    relay = CompletionRenderer(completion_options(logprobs=1, include_usage=True))
    chunks, rules = checked(decoded(completion_chunks(3, top=3), COMPLETION))
    out = b"".join(relay.feed([chunk]) for chunk in chunks)
    sent = events(out + relay.finish(rules.completion_tokens))
    assert {chunk["id"] for chunk in sent} == {"cmpl-gw"}
    assert all(chunk["object"] == "text_completion" for chunk in sent)
    tokens = [c for chunk in sent for c in chunk["choices"]]
    assert [c["logprobs"]["text_offset"] for c in tokens] == [[0], [5], [11]]
    assert all(len(c["logprobs"]["top_logprobs"][0]) == 1 for c in tokens)
    assert sent[-1]["usage"]["completion_tokens"] == 3


def test_completion_without_logprobs_drops_them() -> None:
    relay = CompletionRenderer(completion_options(stream=False))
    chunks, rules = checked(decoded(completion_chunks(2), COMPLETION))
    relay.feed(chunks)
    body = msgspec.json.decode(relay.response(rules.output))
    assert body["choices"][0]["logprobs"] is None
    assert body["choices"][0]["text"] == "Hello there"
    assert body["choices"][0]["finish_reason"] == "length"


def test_one_read_becomes_one_chunk_per_choice() -> None:
    relay = ChatRenderer(chat_options(n=2, logprobs=True))
    sent = events(relay.feed(decoded(chat_chunks(3, n=2), CHAT)))
    assert [[c["index"] for c in chunk["choices"]] for chunk in sent] == [[0], [1]]
    for chunk in sent:
        choice = chunk["choices"][0]
        assert choice["delta"] == {"role": "assistant", "content": "Hello there,"}
        assert len(choice["logprobs"]["content"]) == 3
        assert choice["finish_reason"] == "stop"
    completion = CompletionRenderer(completion_options(logprobs=0))
    merged = events(completion.feed(decoded(completion_chunks(3), COMPLETION)))
    assert len(merged) == 1
    assert merged[0]["choices"][0]["logprobs"]["text_offset"] == [0, 5, 11]
    assert merged[0]["choices"][0]["text"] == "Hello there,"
