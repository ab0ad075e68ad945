"""Stop sequences over a token stream: emit text as soon as it cannot be the start of a stop
sequence, cut the output before the first stop sequence, and say when one was hit."""

from __future__ import annotations


class StopMatcher:
    __slots__ = ("_held", "_stops", "stopped")

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._held = ""
        self.stopped = False

    def push(self, piece: str) -> str:
        """Add a token's text; return the text that is now safe to show."""
        if self.stopped:
            return ""
        if not self._stops:
            return piece
        text = self._held + piece
        first = min((pos for stop in self._stops if (pos := text.find(stop)) >= 0), default=-1)
        if first >= 0:
            self.stopped = True
            self._held = ""
            return text[:first]
        keep = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:length]):
                    keep = max(keep, length)
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The output ended without a stop sequence: release what was held back."""
        held, self._held = self._held, ""
        return "" if self.stopped else held
