"""Running a miner app on a real port inside the test's event loop, and signing requests to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import bittensor as bt
import msgspec

from miner_server.settings import MinerSettings
from tests.support.net import free_port
from tests.support.serving import wait_ready
from tests.support.wallets import make_wallet


def miner_settings(wallet_root: Path, **fields: Any) -> MinerSettings:
    """Settings for a test miner: wallet `miner` under `wallet_root`, localhost, a free port."""
    make_wallet(wallet_root, "miner")
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "catalog": "dev",
        "wallet": {"name": "miner", "hotkey": "default", "path": str(wallet_root)},
    }
    base.update(fields)
    return MinerSettings.from_env({}, overrides=base)


@contextlib.asynccontextmanager
async def serving(app: Any, settings: MinerSettings, server: str = "uvicorn") -> AsyncIterator[str]:
    """Serve `app` with the miner's own server code in this event loop; yields the base URL."""
    from miner_server.server import serve

    settings = msgspec.structs.replace(settings, server=server)
    url = f"http://{settings.host}:{settings.port}"
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(serve(app, settings, stop=stop))
    try:
        await wait_ready(url + "/healthz", task)
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class SignedClient:
    """Posts btauth/1-signed requests as a validator would."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, signer: Any, receiver: str
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.signer = signer
        self.receiver = receiver

    def sign(
        self, path: str, body: bytes, *, receiver: str | None = None, nonce_ns: int | None = None
    ) -> dict[str, str]:
        return bt.http_auth.sign(
            self.signer,
            method="POST",
            path=path,
            body=body,
            receiver_ss58=receiver or self.receiver,
            nonce_ns=nonce_ns,
        )

    def post(
        self,
        path: str,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        **sign: Any,
    ) -> Any:
        """``async with client.post(...) as response``: sign `payload` (bytes or JSON-able)."""
        body = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        signed = dict(headers) if headers is not None else self.sign(path, body, **sign)
        signed["content-type"] = "application/json"
        return self.session.post(self.base_url + path, data=body, headers=signed)


def sse_data(raw: bytes) -> list[bytes]:
    """The ``data:`` payloads of an SSE body, in order (comments dropped)."""
    from protocol.sse import SSEParser

    parser = SSEParser()
    events = parser.feed(raw) + parser.close()
    return [event.data for event in events if event.data is not None]
