"""Normalized outputs: what a miner delivered, independent of the endpoint's JSON shape.

The gateway builds these while it relays a miner's stream (it has to parse every event anyway),
and the checker verifies them; engines produce the same shape. Token ids are the truth: text is
derived from them, never re-tokenized.
"""

from __future__ import annotations

import msgspec


class GeneratedChoice(msgspec.Struct):
    index: int
    token_ids: list[int] = []
    # Raw (temperature 1) log-probabilities the miner reported, aligned with token_ids.
    logprobs: list[float] = []
    text: str = ""
    finish_reason: str | None = None


class TextOutput(msgspec.Struct):
    choices: list[GeneratedChoice]

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.token_ids) for choice in self.choices)
