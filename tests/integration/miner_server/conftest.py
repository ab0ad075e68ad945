"""Fixtures: a miner on a real port with the instant engine, a validator wallet that signs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import bittensor as bt
import pytest

from inference.instant import InstantTextEngine
from miner_server import create_app
from tests.support.miner import SignedClient, miner_settings, serving
from tests.support.wallets import make_wallet

CHAT_TASK = "sn19-tiny-chat"


@pytest.fixture(scope="session")
def validator(wallet_root: Path) -> bt.Wallet:
    return make_wallet(wallet_root, "validator")


@pytest.fixture(scope="session")
def miner_hotkey(wallet_root: Path) -> str:
    return str(make_wallet(wallet_root, "miner").hotkey.ss58_address)


async def start_instant_miner(
    wallet_root: Path, engine: Any = None, server: str = "uvicorn", **fields: Any
) -> Any:
    settings = miner_settings(wallet_root, tasks=[CHAT_TASK], **fields)
    app = create_app(settings, engines={CHAT_TASK: engine or InstantTextEngine(length=16)})
    return serving(app, settings, server)


@pytest.fixture(params=["uvicorn", "granian"])
async def client(
    request: pytest.FixtureRequest, wallet_root: Path, validator: bt.Wallet, miner_hotkey: str
) -> AsyncIterator[SignedClient]:
    started = await start_instant_miner(wallet_root, server=request.param)
    async with started as url, aiohttp.ClientSession() as session:
        yield SignedClient(session, url, validator.hotkey, miner_hotkey)
