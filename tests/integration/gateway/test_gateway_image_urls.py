"""``response_format: "url"``: the image lives in Redis for ``gateway.image_url_ttl_s``, any
replica on the same Redis serves its URL, and the URL answers 404 ``image_expired`` after."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import aiohttp
from PIL import Image

from gateway import create_app
from tests.integration.gateway.conftest import IMAGE, fast_engines, stack
from tests.support.serving import serve_app

TTL_S = 2.0


async def test_image_url_from_another_replica_until_it_expires(
    wallet_root: Path, redis_url: str
) -> None:
    async with stack(
        wallet_root, redis_url, miners={"m1": fast_engines()}, image_url_ttl_s=TTL_S
    ) as running:
        assert running.settings is not None
        async with serve_app(create_app(running.settings), server="uvicorn") as other:
            result = await running.client.images.generate(
                model=IMAGE, prompt="a fox", size="64x64", response_format="url"
            )
            made = time.monotonic()
            url = result.data[0].url
            assert url is not None and url.startswith(running.gateway_url)
            elsewhere = other + url.removeprefix(running.gateway_url)
            async with aiohttp.ClientSession() as session:
                async with session.get(elsewhere) as response:
                    assert response.status == 200
                    image = Image.open(io.BytesIO(await response.read()))
                    assert image.size == (64, 64)
                await asyncio.sleep(max(0.0, made + TTL_S + 0.2 - time.monotonic()))
                for address in (url, elsewhere):
                    async with session.get(address) as response:
                        assert response.status == 404
                        assert (await response.json())["error"]["code"] == "image_expired"
