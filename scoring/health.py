"""Miners' own word on their health: ``GET /healthz`` (``protocol.miner.MinerHealth``), asked
each time the routes are published (every ``scoring.routes_refresh_s``).

A task a miner reports ``degraded`` (its engine's upstream does not answer) gets no route until
the miner reports it healthy again. A miner that does not answer ``/healthz`` keeps its routes:
the dispatcher's cool-downs already handle a miner that is down, and an old miner without the
``degraded`` field is not punished for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiohttp
import msgspec

from protocol.miner import MinerHealth

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
MAX_HEALTH_BODY = 64 * 1024
_HEALTH = msgspec.json.Decoder(MinerHealth)


class MinerHealthProbe:
    """Asks many miners at once (bounded concurrency, a short timeout each). Create and close it
    in the running loop."""

    def __init__(self, *, timeout_s: float = 3.0, concurrency: int = 50) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 2.0))
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def one(self, url: str) -> MinerHealth | None:
        """The miner's answer, or None when it gives none that parses."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._client().get(url.rstrip("/") + HEALTH_PATH) as response:
                if response.status != 200:
                    return None
                async for chunk in response.content.iter_chunked(16 * 1024):
                    size += len(chunk)
                    if size > MAX_HEALTH_BODY:
                        return None
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None
        try:
            return _HEALTH.decode(b"".join(chunks))
        except msgspec.DecodeError:
            return None

    async def degraded(self, urls: Iterable[str]) -> dict[str, frozenset[str]]:
        """Per miner URL, the tasks it reports degraded (absent: none, or no answer)."""
        limiter = asyncio.Semaphore(self.concurrency)

        async def ask(url: str) -> tuple[str, MinerHealth | None]:
            async with limiter:
                return url, await self.one(url)

        answers = await asyncio.gather(*(ask(url) for url in set(urls)))
        return {
            url: frozenset(health.degraded)
            for url, health in answers
            if health is not None and health.degraded
        }
