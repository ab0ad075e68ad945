"""Sign-in rate limiting: failed attempts are counted per (e-mail, client address) and per
client address (ten times the allowance) in fixed windows; over either limit, sign-in is refused
before the password is checked. Counters live in Redis so every gateway replica shares them;
without Redis (tests, a single process) they live in memory."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

PER_ADDRESS_FACTOR = 10


class LoginLimiter(Protocol):
    async def retry_after(self, email: str, ip: str) -> int:
        """Seconds until sign-in may be tried again (0: now)."""
        ...

    async def failed(self, email: str, ip: str) -> None: ...

    async def succeeded(self, email: str, ip: str) -> None: ...


def _keys(email: str, ip: str) -> tuple[str, str]:
    pair = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()[:32]
    address = hashlib.sha256(ip.encode()).hexdigest()[:32]
    return f"pair:{pair}", f"ip:{address}"


_CHECK = """
local wait = 0
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= limits[i] then
    wait = math.max(wait, redis.call('TTL', key), 1)
  end
end
return wait
"""
# SET NX EX then INCR: the window starts at the first failure (works on Redis 6.2 too).
_FAIL = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'EX', ARGV[1], 'NX')
  redis.call('INCR', key)
end
return 1
"""


class RedisLoginLimiter:
    def __init__(self, redis: Redis, prefix: str, *, max_failures: int, window_s: int) -> None:
        self._redis = redis
        self._prefix = f"{prefix}web:login:"
        self._max = max_failures
        self._window = window_s

    def _names(self, email: str, ip: str) -> list[str]:
        return [self._prefix + key for key in _keys(email, ip)]

    async def retry_after(self, email: str, ip: str) -> int:
        wait = await self._redis.eval(
            _CHECK, 2, *self._names(email, ip), self._max, self._max * PER_ADDRESS_FACTOR
        )
        return int(wait)

    async def failed(self, email: str, ip: str) -> None:
        await self._redis.eval(_FAIL, 2, *self._names(email, ip), self._window)

    async def succeeded(self, email: str, ip: str) -> None:
        await self._redis.delete(self._names(email, ip)[0])


class MemoryLoginLimiter:
    """One process only (no Redis): the same rules, counters in a dict."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window_s
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}

    def _get(self, key: str) -> tuple[int, float]:
        count, until = self._counts.get(key, (0, 0.0))
        if until <= self._clock():
            self._counts.pop(key, None)
            return 0, 0.0
        return count, until

    async def retry_after(self, email: str, ip: str) -> int:
        pair, address = _keys(email, ip)
        now = self._clock()
        wait = 0.0
        for key, limit in ((pair, self._max), (address, self._max * PER_ADDRESS_FACTOR)):
            count, until = self._get(key)
            if count >= limit:
                wait = max(wait, until - now, 1.0)
        return int(wait + 0.999)

    async def failed(self, email: str, ip: str) -> None:
        if len(self._counts) > 100_000:
            self._counts.clear()
        for key in _keys(email, ip):
            count, until = self._get(key)
            self._counts[key] = (count + 1, until or self._clock() + self._window)

    async def succeeded(self, email: str, ip: str) -> None:
        self._counts.pop(_keys(email, ip)[0], None)
