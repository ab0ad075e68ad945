"""Helpers for the inference engine tests: collecting and slicing text events."""

from __future__ import annotations

from typing import Any

from inference.base import ChoiceEnd, TextEvent, TextRequest, TokenEvent


async def collect(engine: Any, request: TextRequest) -> list[TextEvent]:
    return [event async for event in engine.generate(request)]


def tokens(events: list[TextEvent], choice: int = 0) -> list[TokenEvent]:
    return [e for e in events if isinstance(e, TokenEvent) and e.choice == choice]


def ends(events: list[TextEvent]) -> dict[int, ChoiceEnd]:
    return {e.choice: e for e in events if isinstance(e, ChoiceEnd)}


def visible_text(events: list[TextEvent], choice: int = 0) -> str:
    return "".join(
        e.text for e in events if isinstance(e, (TokenEvent, ChoiceEnd)) and e.choice == choice
    )
