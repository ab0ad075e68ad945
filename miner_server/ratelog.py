"""Failures that repeat are logged once per kind per window, not once per request.

While a forwarded upstream is down every request fails the same way; a traceback each time
buries the log. ``RepeatedFailures.report`` writes the first failure of a kind at once, then at
most one line per ``window_s`` for that kind, carrying the count of the ones left out since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KINDS = 1024


@dataclass(slots=True)
class _Seen:
    logged_at: float
    left_out: int = 0


class RepeatedFailures:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.window_s = window_s
        self._clock = clock
        self._kinds: dict[str, _Seen] = {}

    def report(self, kind: str, message: str) -> None:
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.logged_at < self.window_s:
            seen.left_out += 1
            return
        if seen is not None and seen.left_out:
            self.logger.warning(
                "%s (and %d more like it in the last %.0f s)",
                message,
                seen.left_out,
                now - seen.logged_at,
            )
        else:
            self.logger.warning("%s", message)
        if len(self._kinds) >= MAX_KINDS and kind not in self._kinds:
            self._kinds.clear()
        self._kinds[kind] = _Seen(now)


def failure_kind(where: str, exc: BaseException) -> str:
    """``where`` and the classes along the exception's cause chain: what makes two failures
    'the same' (the message varies with URLs and ids; the classes do not)."""
    names: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(names) < 8:
        names.append(type(current).__name__)
        current = current.__cause__
    return f"{where} {'<'.join(names)}"
