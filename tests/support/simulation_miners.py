"""The miners of the local subnet simulation (``tests.support.simulation``): their behaviours,
an engine on slower hardware and an app wrapper that refuses a share of the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from inference.base import TextEvent, TextRequest, TokenEvent

WORK_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})


@dataclass(frozen=True)
class Behaviour:
    name: str
    description: str
    # Miner app wrapper: HTTP status answered instead of the work, per request index (or None).
    refuse: Callable[[int], int | None] | None = None
    slow: bool = False
    cheat: bool = False


def _every_third_of_ten(index: int) -> int | None:
    return 500 if (index * 3) % 10 < 3 else None  # 30 %, evenly spread


def _every_other(index: int) -> int | None:
    return 429 if index % 2 else None


BEHAVIOURS = (
    Behaviour("fast-1", "honest, fast"),
    Behaviour("fast-2", "honest, fast"),
    Behaviour("slow", "honest, slow (+0.3 s first token, 40 ms/token)", slow=True),
    Behaviour("flaky", "fails 30% (HTTP 500)", refuse=_every_third_of_ten),
    Behaviour("limiter", "rate-limits half its requests (429)", refuse=_every_other),
    Behaviour("cheater", "random tokens, plausible logprobs", cheat=True),
)


class SlowEngine:
    """An honest engine on slower hardware: the same tokens, later."""

    kind = "chat"

    def __init__(self, inner: Any, *, first_s: float = 0.3, per_token_s: float = 0.04) -> None:
        self.inner = inner
        self.first_s = first_s
        self.per_token_s = per_token_s

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def count_prompt_tokens(self, request: TextRequest) -> int:
        count: int = self.inner.count_prompt_tokens(request)
        return count

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        await asyncio.sleep(self.first_s)
        async for event in self.inner.generate(request):
            if isinstance(event, TokenEvent):
                await asyncio.sleep(self.per_token_s)
            yield event


class Refusing:
    """ASGI wrapper: answers some work requests with an error status instead of the miner."""

    def __init__(self, app: Any, refuse: Callable[[int], int | None]) -> None:
        self.app = app
        self.refuse = refuse
        self.count = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in WORK_PATHS:
            status = self.refuse(self.count)
            self.count += 1
            if status is not None:
                body = b'{"error":{"message":"refused by the simulation","type":"server_error"}}'
                headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
