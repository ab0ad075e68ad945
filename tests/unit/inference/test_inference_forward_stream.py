"""Strict parsing of vLLM-format streaming chunks into engine events."""

from __future__ import annotations

import msgspec
import pytest

from inference.base import ChoiceEnd, EngineError, TokenEvent
from inference.forward_stream import StreamAssembler, parse_token_id


def chunk(**fields) -> bytes:
    return msgspec.json.encode(fields)


def chat_choice(index=0, content="", tokens=(), finish=None, ids=None):
    logprobs = None
    if tokens:
        logprobs = {
            "content": [
                {
                    "token": f"token_id:{token_id}",
                    "logprob": logprob,
                    "bytes": list(text.encode()),
                    "top_logprobs": [
                        {
                            "token": f"token_id:{token_id}",
                            "logprob": logprob,
                            "bytes": list(text.encode()),
                        },
                        {"token": "token_id:9", "logprob": -9.0, "bytes": [57]},
                    ],
                }
                for token_id, logprob, text in tokens
            ]
        }
    choice = {
        "index": index,
        "delta": {"content": content},
        "logprobs": logprobs,
        "finish_reason": finish,
    }
    if ids is not None:
        choice["token_ids"] = ids
    return choice


def test_parse_token_id():
    assert parse_token_id("token_id:156") == 156
    with pytest.raises(EngineError, match="did not return token ids"):
        parse_token_id("hello")
    with pytest.raises(EngineError, match="malformed"):
        parse_token_id("token_id:x")


def test_chat_stream_maps_tokens_and_ends():
    assembler = StreamAssembler(chat=True, n=1, top_logprobs=1)
    assert (
        assembler.feed(chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}]))
        == []
    )
    events = assembler.feed(
        chunk(choices=[chat_choice(content="Hi", tokens=[(72, -0.5, "H")], ids=[72])])
    )
    assert events == [
        TokenEvent(
            choice=0,
            token_id=72,
            token="H",
            text="Hi",
            logprob=-0.5,
            token_bytes=b"H",
            top=events[0].top,
        )
    ]
    assert [(t.token_id, t.logprob) for t in events[0].top] == [(72, -0.5)]
    events = assembler.feed(chunk(choices=[chat_choice(tokens=[(260, -0.1, "")], finish="stop")]))
    assert events[0].token_id == 260 and events[0].text == ""
    assert events[1] == ChoiceEnd(choice=0, finish_reason="stop")
    assert (
        assembler.feed(
            chunk(choices=[], usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        )
        == []
    )
    assert assembler.feed(b"[DONE]") == [] and assembler.done


def test_several_tokens_in_one_chunk_put_the_text_on_the_last():
    assembler = StreamAssembler(chat=True, n=1, top_logprobs=0)
    events = assembler.feed(
        chunk(choices=[chat_choice(content="ab", tokens=[(97, -1.0, "a"), (98, -2.0, "b")])])
    )
    assert [(e.token_id, e.text, e.token) for e in events] == [(97, "", "a"), (98, "ab", "b")]
    assert all(e.top == () for e in events)


def test_text_without_tokens_is_carried_forward():
    assembler = StreamAssembler(chat=True, n=1, top_logprobs=0)
    assert assembler.feed(chunk(choices=[chat_choice(content="x")])) == []
    events = assembler.feed(chunk(choices=[chat_choice(content="", finish="length")]))
    assert events == [ChoiceEnd(choice=0, finish_reason="length", text="x")]


def test_completion_stream():
    assembler = StreamAssembler(chat=False, n=2, top_logprobs=2)
    logprobs = {
        "tokens": ["token_id:5"],
        "token_logprobs": [-0.25],
        "top_logprobs": [{"token_id:5": -0.25, "token_id:7": -3.0, "token_id:8": -4.0}],
        "text_offset": [0],
    }
    events = assembler.feed(
        chunk(choices=[{"index": 1, "text": "q", "logprobs": logprobs, "finish_reason": None}])
    )
    assert (
        len(events) == 1
        and events[0].choice == 1
        and events[0].token == "q"
        and events[0].text == "q"
    )
    assert [(t.token_id, t.logprob) for t in events[0].top] == [(5, -0.25), (7, -3.0)]
    assembler.feed(chunk(choices=[{"index": 0, "text": "", "finish_reason": "length"}]))
    with pytest.raises(EngineError, match=r"without finishing choices \[1\]"):
        assembler.feed(b"[DONE]")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "malformed chunk"),
        (chunk(error={"message": "boom", "type": "InternalServerError"}), "boom"),
        (chunk(object="error", message="old style"), "old style"),
        (chunk(choices=[chat_choice(index=3, tokens=[(1, -1.0, "a")])]), "choice 3"),
        (chunk(choices=[chat_choice(tokens=[(1, -1.0, "a")], finish="abort")]), "abort"),
        (chunk(choices=[chat_choice(tokens=[(1, -1.0, "a")], ids=[2])]), "disagree"),
        (chunk(choices=[chat_choice(content="a", ids=[1])]), "without logprobs"),
        (
            chunk(
                choices=[
                    {
                        "index": 0,
                        "delta": {"content": "a"},
                        "logprobs": {"content": [{"token": "a", "logprob": -1.0}]},
                    }
                ]
            ),
            "token ids",
        ),
    ],
)
def test_bad_chunks_are_engine_errors(payload, message):
    assembler = StreamAssembler(chat=True, n=1, top_logprobs=0)
    with pytest.raises(EngineError, match=message):
        assembler.feed(payload)


def test_nothing_after_a_finished_choice_or_done():
    assembler = StreamAssembler(chat=True, n=1, top_logprobs=0)
    assembler.feed(chunk(choices=[chat_choice(tokens=[(1, -1.0, "a")], finish="stop")]))
    with pytest.raises(EngineError, match="after it finished"):
        assembler.feed(chunk(choices=[chat_choice(tokens=[(1, -1.0, "a")])]))
    assembler.feed(b"[DONE]")
    with pytest.raises(EngineError, match="after"):
        assembler.feed(chunk(choices=[]))
