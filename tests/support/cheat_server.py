"""Miners as the checker meets them in production: a vLLM-format server behind the forward engine.

``CheatServer`` is ``tests.support.vllm_server.VllmFormatServer`` (vLLM's OpenAI streaming
format: token ids under ``token_id:N``, ``return_token_ids``, usage, ``[DONE]``) serving the dev
chat model through a ``Behaviour`` that may change what it computes or what it reports:

- honest: the model in float32, or cast to bfloat16 / float16 (as GPU miners run it);
- fabricated logprobs (honest tokens): ``constant`` (every logprob -0.001), ``shifted`` (half the
  true value: everything looks likelier), ``shuffled`` (the true values permuted between the
  positions of a choice: the same multiset, at the wrong places);
- ``replay``: answers each request with the completion it generated for the previous request
  (another prompt);
- sampling changed: ``greedy`` (temperature 0 whatever was asked), ``sampling`` (temperature 1
  when 0 was asked), ``half_temperature``, ``tight_top_p`` (half the asked top_p).

``ForwardCheatEngine`` is the real ``inference.forward.ForwardTextEngine`` pointed at such a
server, which it starts and stops with itself: a miner server built with it is a forward-engine
miner whose upstream misbehaves (``tests.support.checker_suite`` runs it as any behaviour).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec

from inference.base import ChoiceEnd, TextEvent, TextRequest, TokenEvent
from inference.forward import ForwardTextEngine
from inference.transformers_text import TransformersTextEngine
from protocol.catalog import EngineSpec
from tests.support.net import free_port
from tests.support.vllm_server import VllmFormatServer

Mode = Literal[
    "honest",
    "constant",
    "shifted",
    "shuffled",
    "replay",
    "greedy",
    "sampling",
    "half_temperature",
    "tight_top_p",
]
MODES: tuple[Mode, ...] = (
    "honest",
    "constant",
    "shifted",
    "shuffled",
    "replay",
    "greedy",
    "sampling",
    "half_temperature",
    "tight_top_p",
)
# The prompt the first replayed answer is generated for (nothing earlier to replay).
REPLAY_SEED_PROMPT = "Say something about the weather."


class CheatTextEngine:
    """The text engine behind a ``CheatServer``: the dev model in ``dtype``, with ``mode``."""

    kind: Literal["chat"] = "chat"

    def __init__(self, mode: Mode = "honest", dtype: str = "float32") -> None:
        self.mode = mode
        self.model = TransformersTextEngine("builtin:tiny-llama", dtype=dtype)
        self.previous: list[TextEvent] = []
        self.shuffle = random.Random(1234)

    async def start(self) -> None:
        await self.model.start()

    async def close(self) -> None:
        await self.model.close()

    def count_prompt_tokens(self, request: TextRequest) -> int:
        return self.model.count_prompt_tokens(request)

    def served(self, request: TextRequest) -> TextRequest:
        """The request the model actually runs."""
        temperature, top_p = request.temperature, request.top_p
        if self.mode == "greedy" and temperature > 0:
            temperature = 0.0
        elif self.mode == "sampling" and temperature == 0:
            temperature = 1.0
        elif self.mode == "half_temperature":
            temperature /= 2
        elif self.mode == "tight_top_p":
            top_p /= 2
        return msgspec.structs.replace(request, temperature=temperature, top_p=top_p)

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        if self.mode == "replay":
            async for event in self._replay(request):
                yield event
            return
        pending: list[TokenEvent] = []
        async for event in self.model.generate(self.served(request)):
            if isinstance(event, TokenEvent) and self.mode in ("constant", "shifted"):
                logprob = -0.001 if self.mode == "constant" else event.logprob / 2
                yield msgspec.structs.replace(event, logprob=logprob)
            elif self.mode == "shuffled":
                # A choice's tokens are held until it ends, then sent with permuted logprobs.
                if isinstance(event, TokenEvent):
                    pending.append(event)
                    continue
                values = [token.logprob for token in pending]
                self.shuffle.shuffle(values)
                for token, value in zip(pending, values, strict=True):
                    yield msgspec.structs.replace(token, logprob=value)
                pending = []
                yield event
            else:
                yield event

    async def _replay(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        """The previous request's first choice, cut to this request's ``max_tokens``, for every
        choice asked; this request's own completion is kept for the next one."""
        if not self.previous:
            first = msgspec.structs.replace(request, messages=None, prompt=REPLAY_SEED_PROMPT)
            self.previous = [event async for event in self.model.generate(first)]
        earlier = [e for e in self.previous if e.choice == 0]
        self.previous = [event async for event in self.model.generate(request)]
        tokens = [e for e in earlier if isinstance(e, TokenEvent)][: request.max_tokens]
        end = next(e for e in earlier if isinstance(e, ChoiceEnd))
        cut = len(tokens) < sum(isinstance(e, TokenEvent) for e in earlier)
        for choice in range(request.n):
            for token in tokens:
                yield msgspec.structs.replace(token, choice=choice)
            yield ChoiceEnd(
                choice=choice,
                finish_reason="length" if cut else end.finish_reason,
                text="" if cut else end.text,
            )


class CheatServer(VllmFormatServer):
    """A vLLM-format server whose text engine is a ``CheatTextEngine``."""

    def __init__(self, mode: Mode = "honest", dtype: str = "float32") -> None:
        super().__init__(CheatTextEngine(mode, dtype))

    async def start(self, port: int = 0) -> str:
        await self.text_engine.start()
        return await super().start(port)

    async def close(self) -> None:
        await super().close()
        await self.text_engine.close()


class ForwardCheatEngine(ForwardTextEngine):
    """The forward engine pointed at its own ``CheatServer`` on a free port."""

    def __init__(self, mode: Mode = "honest", dtype: str = "float32") -> None:
        self.port = free_port()
        self.server = CheatServer(mode, dtype)
        spec = EngineSpec(
            type="forward",
            model="sn19-tiny-chat",
            options={"base_url": f"http://127.0.0.1:{self.port}/v1", "read_timeout_s": 120.0},
        )
        super().__init__(spec)

    async def start(self) -> None:
        await self.server.start(self.port)
        await super().start()

    async def close(self) -> None:
        await super().close()
        await self.server.close()

    @property
    def engine(self) -> Any:
        return self.server.text_engine
