"""The API half of the dashboard's end-to-end test: "the key works against the API through the
openai SDK" and "the old key stops working after rotation", against the real gateway.

``api_for`` serves ``gateway.create_app`` with billing on (``billing.enabled``: it opens the
same database and Redis as the dashboard and builds its own billing in its lifespan, like a
second replica) in front of in-memory miners (``FakeMinerClient`` answering a 4-token chat
stream), on a real port, and calls it with the official openai SDK. The gateway settles a
request just after answering it, so ``wait_settled`` polls until the usage record is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import openai

from billing import Billing
from core.settings import Settings
from protocol.catalog import Catalog

CHAT = "sn19-tiny-chat"
MESSAGES = [{"role": "user", "content": "Hello!"}]


class GatewayApi:
    def __init__(self, url: str) -> None:
        self.url = url
        # Chat completions answered so far (each one is billed).
        self.answered = 0

    def client(self, secret: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=secret, max_retries=0, timeout=30
        )

    async def chat(self, secret: str) -> int:
        """One chat completion with this key; its completion tokens."""
        completion = await self.client(secret).chat.completions.create(
            model=CHAT, messages=MESSAGES
        )
        self.answered += 1
        assert completion.choices[0].message.content
        assert completion.usage is not None
        return completion.usage.completion_tokens

    async def refused(self, secret: str) -> bool:
        """True when the gateway answers 401 for this key."""
        try:
            await self.client(secret).chat.completions.create(model=CHAT, messages=MESSAGES)
        except openai.AuthenticationError:
            return True
        # Answered (and billed): a revoked key may work until the change reaches the gateway.
        self.answered += 1
        return False


async def wait_settled(billing: Billing, account_id: int, count: int, timeout: float = 10) -> None:
    """Until the account has ``count`` usage records (the gateway settles after answering)."""
    deadline = time.monotonic() + timeout
    while len(await billing.usage.requests(account_id, limit=count)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"account {account_id}: fewer than {count} settled requests")
        await asyncio.sleep(0.05)


def gateway_settings(settings: Settings, database_url: str) -> Settings:
    """The dashboard's settings with billing on, on the same database."""
    replace = msgspec.structs.replace
    return replace(
        settings,
        billing=replace(settings.billing, enabled=True),
        database=replace(settings.database, url=database_url),
    )


def _gateway_app(settings: Settings, catalog: Catalog, redis: Any) -> Any:
    from gateway import create_app
    from tests.support.fake_miner import Canned, FakeMinerClient
    from tests.support.gateway import StaticRoutes, all_routes
    from tests.support.miner_streams import chat_chunks, stream_body

    pieces = stream_body(chat_chunks(4))
    return create_app(
        settings,
        catalog=catalog,
        redis=redis,
        routes=StaticRoutes(all_routes()),
        miner_client=FakeMinerClient(lambda url, path, body: Canned(200, pieces)),
    )


@contextlib.asynccontextmanager
async def api_for(settings: Settings, catalog: Catalog, redis: Any) -> AsyncIterator[GatewayApi]:
    from tests.support.serving import serve_app

    async with serve_app(_gateway_app(settings, catalog, redis), server="uvicorn") as url:
        yield GatewayApi(url)
