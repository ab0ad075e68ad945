"""Tool calls read out of completion text (``protocol.tool_calls``): both formats, invalid blocks
as content, and the streaming splitter agreeing with the whole-text reading however the text is
cut into pieces."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.tool_calls import Call, CallSplitter, render_call, split_calls

CALL = Call(name="get_weather", arguments=json.dumps({"city": "Paris", "days": 3}))


def test_hermes_blocks_and_content() -> None:
    text = "Let me check.\n" + render_call(CALL, "hermes") + render_call(CALL, "hermes")
    content, calls = split_calls(text, "hermes")
    assert content == "Let me check." and calls == [CALL, CALL]


def test_llama3_json_calls() -> None:
    text = render_call(CALL, "llama3_json") + "; " + render_call(CALL, "llama3_json")
    assert split_calls(text, "llama3_json") == ("", [CALL, CALL])
    assert split_calls("<|python_tag|>" + render_call(CALL, "llama3_json"), "llama3_json")[1]
    assert split_calls("It is sunny.", "llama3_json") == ("It is sunny.", [])


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>{not json}</tool_call>",
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1]}</tool_call>',
        "<tool_call>unfinished",
    ],
)
def test_blocks_that_do_not_parse_are_content(text: str) -> None:
    assert split_calls(text, "hermes") == (text, [])


def _stream(text: str, cuts: list[int], fmt: str) -> tuple[str, list[Call]]:
    splitter = CallSplitter(fmt)  # type: ignore[arg-type]
    content: list[str] = []
    calls: list[Call] = []
    start = 0
    for cut in [*sorted(cuts), len(text)]:
        piece, done = splitter.feed(text[start:cut])
        content.append(piece)
        calls.extend(done)
        start = cut
    piece, done = splitter.finish()
    return "".join(content) + piece, calls + done


PIECES = st.sampled_from(
    ["hi ", "<", "<tool", "_call>", render_call(CALL, "hermes"), "</tool_call>", "x", "{", "}"]
)


@given(st.lists(PIECES, max_size=8), st.lists(st.integers(min_value=0, max_value=400)))
def test_hermes_streaming_agrees_with_the_whole_text(parts: list[str], cuts: list[int]) -> None:
    text = "".join(parts)
    content, calls = _stream(text, [c for c in cuts if c <= len(text)], "hermes")
    whole_content, whole_calls = split_calls(text, "hermes")
    assert calls == whole_calls
    # Streamed content is the text outside calls (not stripped: it was already sent).
    if whole_calls:
        assert content.strip() == whole_content
    else:
        assert content == text


@given(
    st.sampled_from([render_call(CALL, "llama3_json"), "  It is sunny.", "<|python_tag|>x", ""]),
    st.lists(st.integers(min_value=0, max_value=200)),
)
def test_llama3_streaming_agrees_with_the_whole_text(text: str, cuts: list[int]) -> None:
    content, calls = _stream(text, [c for c in cuts if c <= len(text)], "llama3_json")
    assert (content, calls) == split_calls(text, "llama3_json")
