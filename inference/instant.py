"""An engine that answers instantly with a fixed token sequence and no model compute.

It exists so benchmarks measure only our own code (the miner server, the gateway, signing,
streaming) and not a model; it is never in a production catalog. The token ids and logprobs are
a deterministic function of the position, so outputs are reproducible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from inference.base import ChoiceEnd, TextEvent, TextRequest, TokenEvent
from inference.stops import StopMatcher
from protocol.catalog import EngineSpec, Task

_WORDS = (
    "Hello",
    " from",
    " an",
    " instant",
    " miner",
    ".",
    " It",
    " streams",
    " fixed",
    " tokens",
)


class InstantTextEngine:
    kind: Literal["chat"] = "chat"

    def __init__(self, *, length: int = 16, delay_s: float = 0.0) -> None:
        self.length = length
        self.delay_s = delay_s

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> InstantTextEngine:
        del task, device
        length = int(spec.options.get("length", 16))
        delay_s = float(spec.options.get("delay_s", 0.0))
        return cls(length=length, delay_s=delay_s)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def count_prompt_tokens(self, request: TextRequest) -> int:
        if request.prompt_ids is not None:
            return len(request.prompt_ids)
        if request.messages is not None:
            return sum(len(turn.content.encode()) + 4 for turn in request.messages) + 1
        return len((request.prompt or "").encode())

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        count = min(self.length, request.max_tokens)
        for choice in range(request.n):
            matcher = StopMatcher(request.stop)
            finish: Literal["stop", "length"] = "length" if count < self.length else "stop"
            for position in range(count):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                word = _WORDS[position % len(_WORDS)]
                text = matcher.push(word)
                yield TokenEvent(
                    choice=choice,
                    token_id=position % len(_WORDS),
                    token=word,
                    text=text,
                    logprob=-0.01 * (position % 7),
                    token_bytes=word.encode(),
                )
                if matcher.stopped:
                    finish = "stop"
                    break
            yield ChoiceEnd(choice=choice, finish_reason=finish, text=matcher.flush())
