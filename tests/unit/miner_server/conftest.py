"""An in-process miner app (instant engine, real signatures) for error-path tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import bittensor as bt
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from inference.instant import InstantTextEngine
from miner_server import create_app
from tests.support.miner import miner_settings
from tests.support.wallets import make_wallet

CHAT_TASK = "sn19-tiny-chat"


class Signed:
    """Sends signed requests to an in-process app."""

    def __init__(self, client: AsyncTestClient, signer: Any, receiver: str) -> None:
        self.client = client
        self.signer = signer
        self.receiver = receiver

    async def post(self, path: str, payload: Any, **headers: str):
        body = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        signed = bt.http_auth.sign(
            self.signer, method="POST", path=path, body=body, receiver_ss58=self.receiver
        )
        return await self.client.post(path, content=body, headers={**signed, **headers})


@pytest.fixture(scope="session")
def validator_key(wallet_root: Path) -> Any:
    return make_wallet(wallet_root, "validator").hotkey


@pytest.fixture
def make_client(wallet_root: Path, validator_key: Any) -> Callable[..., Any]:
    def build(engines: dict[str, Any] | None = None, **fields: Any) -> AsyncIterator[Signed]:
        settings = miner_settings(wallet_root, **{"tasks": [CHAT_TASK], **fields})
        app = create_app(settings, engines=engines or {CHAT_TASK: InstantTextEngine()})
        hotkey = make_wallet(wallet_root, "miner").hotkey.ss58_address

        class _Context:
            async def __aenter__(self) -> Signed:
                self.client = AsyncTestClient(app)
                await self.client.__aenter__()
                return Signed(self.client, validator_key, hotkey)

            async def __aexit__(self, *exc: Any) -> None:
                await self.client.__aexit__(*exc)

        return _Context()

    return build
