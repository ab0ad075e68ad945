"""How many choices an engine asks its backend for, and how it gives the client ``n``.

vLLM refuses ``n >= 2`` at temperature 0 ("n must be 1 when using greedy sampling"): greedy
choices are identical, so there is nothing to sample twice. Engines that run on vLLM (in process,
or behind a forwarded OpenAI-compatible server) ask for one choice and copy it: every event of
choice 0 is given once per requested choice, each copy with its own index (token ids, logprobs
and text identical). ``plan_choices`` decides; ``copy_events`` copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from inference.base import TextEvent, TextRequest


def plan_choices(request: TextRequest) -> tuple[TextRequest, int]:
    """(the request to run, how many copies of each of its choices the client gets): at
    temperature 0 with ``n >= 2``, one choice copied ``n`` times; otherwise the request as is."""
    if request.temperature == 0 and request.n > 1:
        return msgspec.structs.replace(request, n=1), request.n
    return request, 1


def copy_events(events: Sequence[TextEvent], copies: int) -> list[TextEvent]:
    """Each event once per choice ``0 .. copies-1`` (``copies == 1``: the events unchanged)."""
    if copies == 1:
        return list(events)
    return [
        msgspec.structs.replace(event, choice=index) for event in events for index in range(copies)
    ]
