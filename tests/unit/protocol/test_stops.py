from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inference.stops import StopMatcher


def run(pieces: list[str], stops: tuple[str, ...]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = ""
    for piece in pieces:
        out += matcher.push(piece)
        if matcher.stopped:
            break
    out += matcher.flush()
    return out, matcher.stopped


def test_stop_across_pieces() -> None:
    assert run(["Hel", "lo ST", "OP more"], ("STOP",)) == ("Hello ", True)
    assert run(["a", "S", "T"], ("STOP",)) == ("aST", False)


@given(st.text(alphabet="abST", max_size=30), st.lists(st.integers(1, 5), max_size=10))
def test_matches_plain_find(text: str, cuts: list[int]) -> None:
    stops = ("ST", "bab")
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(text[pos : pos + cut])
        pos += cut
    pieces.append(text[pos:])
    out, stopped = run(pieces, stops)
    first = min((i for s in stops if (i := text.find(s)) >= 0), default=-1)
    if first >= 0:
        assert stopped and out == text[:first]
    else:
        assert not stopped and out == text
