"""A real Redis for tests (``SN19_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``) with a
unique key prefix per test; the test's keys are deleted afterwards. Tests using it carry
``@pytest.mark.redis`` and FAIL when the server is unreachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.redis import create_redis

REDIS_URL = os.environ.get("SN19_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(name="redis_prefix")
def fixture_redis_prefix() -> str:
    return f"sn19test:{uuid.uuid4().hex[:10]}:"


@pytest.fixture(name="redis_client")
async def fixture_redis_client(redis_prefix: str) -> AsyncIterator[Redis]:
    client = create_redis(REDIS_URL, max_connections=64)
    await client.ping()
    yield client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
