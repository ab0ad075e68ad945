"""Server-sent events framing, as OpenAI streams use it.

Each event is ``data: <one-line JSON>\\n\\n``; a stream ends with ``data: [DONE]\\n\\n``; lines
starting with ``:`` are comments (keep-alives, and the miner's signed receipt at the end of a
stream). The parser is incremental and bounded: a line longer than ``max_line`` is an error,
so a miner cannot make us buffer without limit.
"""

from __future__ import annotations

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


class SSEError(ValueError):
    """The byte stream is not well-formed SSE or exceeds the size limits."""


def data_event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def comment_event(text: str) -> bytes:
    return b": " + text.encode() + b"\n\n"


class Event:
    """One parsed event: ``data`` (bytes, without the prefix) or a ``comment``."""

    __slots__ = ("comment", "data")

    def __init__(self, data: bytes | None = None, comment: bytes | None = None) -> None:
        self.data = data
        self.comment = comment

    @property
    def is_done(self) -> bool:
        return self.data == b"[DONE]"

    def __repr__(self) -> str:
        return f"Event(data={self.data!r}, comment={self.comment!r})"


class SSEParser:
    """Feed raw bytes, get complete events. Multi-line ``data:`` fields are joined with ``\\n``."""

    __slots__ = ("_buffer", "_data", "max_line")

    def __init__(self, max_line: int = 4 * 1024 * 1024) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self.max_line = max_line

    def feed(self, chunk: bytes) -> list[Event]:
        if not self._data and b"\r" not in chunk:
            fast = self._feed_simple(chunk)
            if fast is not None:
                return fast
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[Event] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line, events)
        rest = buffer[start:]
        if len(rest) > self.max_line:
            raise SSEError(f"event line longer than {self.max_line} bytes")
        self._buffer = rest
        return events

    def _feed_simple(self, chunk: bytes) -> list[Event] | None:
        """The framing miners use (one ``data:`` or ``:`` line per event, ``\n\n`` between
        events) split in one pass, about 10× cheaper than line by line; ``None`` when the
        chunk needs the general parser (multi-line data, other fields, a partial line)."""
        data = self._buffer + chunk if self._buffer else chunk
        blocks = data.split(b"\n\n")
        rest = blocks.pop()
        if b"\n" in rest:
            return None
        events: list[Event] = []
        for block in blocks:
            if not block:
                continue
            if b"\n" in block:
                return None
            if block.startswith(b"data:"):
                events.append(Event(data=block[5:].removeprefix(b" ")))
            elif block.startswith(b":"):
                events.append(Event(comment=block[1:].lstrip()))
            else:
                return None
        if len(rest) > self.max_line:
            raise SSEError(f"event line longer than {self.max_line} bytes")
        self._buffer = rest
        return events

    def _line(self, line: bytes, events: list[Event]) -> None:
        if not line:
            if self._data:
                events.append(Event(data=b"\n".join(self._data)))
                self._data = []
            return
        if line.startswith(b":"):
            events.append(Event(comment=line[1:].lstrip()))
            return
        field, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if field == b"data":
            self._data.append(value)
            if sum(len(part) for part in self._data) > self.max_line:
                raise SSEError(f"event larger than {self.max_line} bytes")
        elif field not in (b"event", b"id", b"retry"):
            raise SSEError(f"unknown SSE field {field[:32]!r}")

    def close(self) -> list[Event]:
        """End of stream: flush a final event that lacked its blank line."""
        events: list[Event] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        if self._data:
            events.append(Event(data=b"\n".join(self._data)))
            self._data = []
        return events
