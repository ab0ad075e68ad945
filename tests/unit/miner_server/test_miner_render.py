"""Rendering engine events: every chunk decodes with the strict miner types."""

from __future__ import annotations

import math

import msgspec
import pytest

from inference.base import ChoiceEnd, TextRequest, TokenEvent, TopToken
from miner_server.render import ChatRenderer, CompletionRenderer
from miner_server.textmap import TextCall
from protocol.miner import MinerChatChunk, MinerCompletionChunk
from tests.support.miner import sse_data


def call(n: int = 1, top: int = 0, as_ids: bool = False) -> TextCall:
    return TextCall(
        request=TextRequest(max_tokens=10, prompt="x", n=n, top_logprobs=top),
        model="sn19-tiny-chat",
        stream=True,
        include_usage=True,
        top_logprobs=top,
        tokens_as_ids=as_ids,
    )


def token(
    choice: int, token_id: int, text: str, logprob: float = -0.5, shown: str | None = None
) -> TokenEvent:
    return TokenEvent(
        choice=choice,
        token_id=token_id,
        token=text,
        text=text if shown is None else shown,
        logprob=logprob,
        token_bytes=text.encode(),
        top=(TopToken(token_id, text, logprob), TopToken(99, "?", -3.0), TopToken(98, "!", -4.0)),
    )


def chat_chunks(raw: bytes) -> list[MinerChatChunk]:
    return [msgspec.json.decode(data, type=MinerChatChunk) for data in sse_data(raw)]


def test_one_chunk_per_choice_per_batch_with_role_first() -> None:
    renderer = ChatRenderer(call(n=2, top=2), "chatcmpl-1", 123)
    first = chat_chunks(renderer.chunks([token(0, 1, "a"), token(1, 2, "b"), token(0, 3, "c")]))
    assert [chunk.choices[0].index for chunk in first] == [0, 1]
    zero = first[0].choices[0]
    assert zero.delta.role == "assistant" and zero.delta.content == "ac"
    assert zero.token_ids == [1, 3]
    assert [entry.token for entry in zero.logprobs.content] == ["a", "c"]
    assert [len(entry.top_logprobs) for entry in zero.logprobs.content] == [2, 2]
    assert zero.logprobs.content[0].top_logprobs[1].token == "?"
    assert zero.finish_reason is None

    later = chat_chunks(
        renderer.chunks([token(0, 4, "d"), ChoiceEnd(choice=0, finish_reason="stop", text="!")])
    )
    (chunk,) = later
    choice = chunk.choices[0]
    assert choice.delta.role is None and choice.delta.content == "d!"
    assert choice.finish_reason == "stop" and choice.token_ids == [4]

    end = chat_chunks(renderer.chunks([ChoiceEnd(choice=1, finish_reason="length")]))
    assert end[0].choices[0].token_ids == [] and end[0].choices[0].logprobs.content == []
    assert end[0].choices[0].finish_reason == "length"

    (usage,) = chat_chunks(renderer.usage_chunk(prompt_tokens=7))
    assert usage.choices == [] and usage.usage.completion_tokens == 4
    assert usage.usage.total_tokens == 11
    assert {chunk.id for chunk in first + later + end} == {"chatcmpl-1"}


def test_top_logprobs_not_requested_are_empty() -> None:
    (chunk,) = chat_chunks(ChatRenderer(call(), "c", 1).chunks([token(0, 1, "a")]))
    assert chunk.choices[0].logprobs.content[0].top_logprobs == []


def test_logprobs_are_clamped_to_json_numbers() -> None:
    renderer = ChatRenderer(call(top=1), "c", 1)
    events = [token(0, 1, "a", -math.inf), token(0, 2, "b", math.nan), token(0, 3, "c", 1e-7)]
    (chunk,) = chat_chunks(renderer.chunks(events))
    assert [entry.logprob for entry in chunk.choices[0].logprobs.content] == [-9999.0, -9999.0, 0.0]


def test_tokens_as_ids() -> None:
    renderer = ChatRenderer(call(top=2, as_ids=True), "c", 1)
    (chunk,) = chat_chunks(renderer.chunks([token(0, 17, "a")]))
    entry = chunk.choices[0].logprobs.content[0]
    assert entry.token == "token_id:17" and entry.bytes == list(b"token_id:17")
    assert [alt.token for alt in entry.top_logprobs] == ["token_id:17", "token_id:99"]


def test_long_token_bytes_are_left_out() -> None:
    long = "x" * 80
    (chunk,) = chat_chunks(ChatRenderer(call(), "c", 1).chunks([token(0, 1, long)]))
    assert chunk.choices[0].logprobs.content[0].bytes is None


def test_non_stream_chat_response() -> None:
    renderer = ChatRenderer(call(n=2), "chatcmpl-9", 5)
    events = [
        token(0, 1, "a"),
        token(1, 2, "b"),
        ChoiceEnd(0, "stop"),
        token(1, 3, "c"),
        ChoiceEnd(1, "length"),
    ]
    payload = msgspec.json.decode(renderer.response(events, prompt_tokens=3))
    assert payload["object"] == "chat.completion"
    assert [choice["message"]["content"] for choice in payload["choices"]] == ["a", "bc"]
    assert [choice["token_ids"] for choice in payload["choices"]] == [[1], [2, 3]]
    assert [choice["finish_reason"] for choice in payload["choices"]] == ["stop", "length"]
    assert payload["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


def test_completion_chunks_carry_offsets_across_chunks() -> None:
    renderer = CompletionRenderer(call(top=2), "cmpl-1", 1)
    first = renderer.chunks([token(0, 1, "ab"), token(0, 2, "c", shown="")])
    second = renderer.chunks([token(0, 3, "d", shown="cd"), ChoiceEnd(0, "length")])
    chunks = [
        msgspec.json.decode(data, type=MinerCompletionChunk) for data in sse_data(first + second)
    ]
    logprobs = [chunk.choices[0].logprobs for chunk in chunks]
    assert [lp.tokens for lp in logprobs] == [["ab", "c"], ["d"]]
    assert [lp.text_offset for lp in logprobs] == [[0, 2], [2]]
    assert logprobs[0].top_logprobs == [{"ab": -0.5, "?": -3.0}, {"c": -0.5, "?": -3.0}]
    assert "".join(chunk.choices[0].text for chunk in chunks) == "abcd"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert chunks[0].choices[0].token_ids == [1, 2]


def test_completion_without_logprobs_has_no_top_logprobs() -> None:
    renderer = CompletionRenderer(call(top=0), "cmpl-1", 1)
    payload = msgspec.json.decode(renderer.response([token(0, 1, "a"), ChoiceEnd(0, "stop")], 1))
    logprobs = payload["choices"][0]["logprobs"]
    assert logprobs == {
        "tokens": ["a"],
        "token_logprobs": [-0.5],
        "top_logprobs": None,
        "text_offset": [0],
    }


@pytest.mark.parametrize("renderer_type", [ChatRenderer, CompletionRenderer])
def test_many_tokens_in_one_chunk(renderer_type) -> None:
    renderer = renderer_type(call(), "id", 1)
    events = [token(0, i % 200, "t") for i in range(1000)]
    chunk_type = MinerChatChunk if renderer_type is ChatRenderer else MinerCompletionChunk
    (data,) = sse_data(renderer.chunks(events))
    chunk = msgspec.json.decode(data, type=chunk_type)
    assert len(chunk.choices[0].token_ids) == 1000


def test_logprob_bytes_are_the_tokens_raw_bytes() -> None:
    """A byte-fallback token shows as U+FFFD; its bytes are its own byte, chosen or not."""
    half = TokenEvent(
        choice=0,
        token_id=0xE2,
        token="\ufffd",
        text="",
        logprob=-0.1,
        token_bytes=b"\xe2",
        top=(TopToken(0xE2, "\ufffd", -0.1, b"\xe2"), TopToken(0xE3, "\ufffd", -2.0, b"\xe3")),
    )
    renderer = ChatRenderer(call(top=2), "chatcmpl-1", 123)
    (entry,) = chat_chunks(renderer.chunks([half]))[0].choices[0].logprobs.content
    assert entry.token == "\ufffd" and entry.bytes == [226]
    assert [alt.bytes for alt in entry.top_logprobs] == [[226], [227]]
