from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.sse import DONE, SSEError, SSEParser, comment_event, data_event


def test_events_split_across_arbitrary_chunks() -> None:
    stream = data_event(b'{"a":1}') + comment_event("keep-alive") + data_event(b"x") + DONE
    for size in range(1, len(stream) + 1):
        parser = SSEParser()
        events = []
        for start in range(0, len(stream), size):
            events += parser.feed(stream[start : start + size])
        events += parser.close()
        assert [e.data for e in events] == [b'{"a":1}', None, b"x", b"[DONE]"]
        assert events[1].comment == b"keep-alive"
        assert events[-1].is_done


def test_crlf_and_multiline_data() -> None:
    parser = SSEParser()
    events = parser.feed(b"data: a\r\ndata: b\r\n\r\n")
    assert [e.data for e in events] == [b"a\nb"]


def test_line_limit() -> None:
    parser = SSEParser(max_line=10)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 20)
    with pytest.raises(SSEError):
        SSEParser().feed(b"bogus: 1\n")


def test_unterminated_final_event_is_flushed() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert [e.data for e in parser.close()] == [b"tail"]


@given(
    st.lists(
        st.binary(min_size=1, max_size=50).filter(lambda b: b"\n" not in b and b"\r" not in b),
        max_size=10,
    )
)
def test_roundtrip(payloads: list[bytes]) -> None:
    parser = SSEParser()
    events = parser.feed(b"".join(data_event(p) for p in payloads))
    assert [e.data for e in events] == payloads
