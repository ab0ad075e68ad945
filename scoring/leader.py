"""One scoring leader at a time: a Redis lock with a token, renewed while the leader works.

- Acquire: ``SET key token NX PX ttl``: only when nobody holds it.
- Renew: a Lua script extends the TTL **only if the key still holds our token**, every third of
  the TTL. Release (shutdown): a Lua script deletes the key only if it holds our token.
- A standby polls ``try_acquire`` every ``poll_s``; when the leader dies (kill -9) its key expires
  after at most ``ttl_s`` and a standby takes over within ``ttl_s + poll_s``.
- Losing the lock stops the leader's work **immediately**: ``Leadership.lead`` runs the work as a
  task and cancels it the moment a renewal finds another token, or when no renewal has
  succeeded for the TTL minus one poll interval (Redis unreachable: another process may already
  hold the lock, so we stop before our key can have expired).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def instance_token() -> str:
    """Who holds the lock: host, pid and a random part (unique per process start)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaderLock:
    def __init__(self, redis: aioredis.Redis, key: str, *, ttl_s: float, token: str) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(int(ttl_s * 1000), 100)
        self.token = token

    async def try_acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Extend the lock if we still hold it; False when someone else does (or nobody)."""
        result = await self.redis.eval(_RENEW, 1, self.key, self.token, str(self.ttl_ms))
        return bool(result)

    async def release(self) -> bool:
        result = await self.redis.eval(_RELEASE, 1, self.key, self.token)
        return bool(result)

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class Leadership:
    """Runs ``work`` only while this process holds the lock; waits as a standby otherwise."""

    def __init__(self, lock: LeaderLock, *, poll_s: float, ttl_s: float) -> None:
        self.lock = lock
        self.poll_s = poll_s
        self.ttl_s = ttl_s
        self.is_leader = False

    async def _wait_for_lock(self, stop: asyncio.Event) -> bool:
        announced = False
        while not stop.is_set():
            try:
                if await self.lock.try_acquire():
                    return True
                if not announced:
                    log.info("standing by: the scoring leader is %s", await self.lock.holder())
                    announced = True
            except RedisError as exc:
                log.warning("leader election: Redis unreachable (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
        return False

    async def _keep(self, work: asyncio.Task[None]) -> None:
        """Renew the lock until the work ends; cancel the work as soon as the lock is lost."""
        interval = self.ttl_s / 3
        valid_until = time.monotonic() + self.ttl_s - self.poll_s
        while not work.done():
            await asyncio.wait({work}, timeout=interval)
            if work.done():
                return
            try:
                if not await self.lock.renew():
                    log.error("leadership lost: another process holds the lock; stopping now")
                    work.cancel()
                    return
                valid_until = time.monotonic() + self.ttl_s - self.poll_s
            except RedisError as exc:
                if time.monotonic() >= valid_until:
                    log.error("leadership lost: cannot renew the lock (%s); stopping now", exc)
                    work.cancel()
                    return
                log.warning("renewing the leader lock failed (%s); retrying", exc)

    async def lead(self, stop: asyncio.Event, work: Callable[[], Awaitable[None]]) -> None:
        """Until ``stop``: wait for the lock, then run ``work`` while holding it. ``work`` is
        restarted after a lost lock is won again; it should return only when ``stop`` is set."""
        while not stop.is_set():
            if not await self._wait_for_lock(stop):
                return
            self.is_leader = True
            log.info("leading the scoring loop (lock %s)", self.lock.token)
            task: asyncio.Task[None] = asyncio.ensure_future(work())
            keeper = asyncio.get_running_loop().create_task(self._keep(task))
            try:
                await asyncio.wait({task})
            finally:
                self.is_leader = False
                keeper.cancel()
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                with contextlib.suppress(RedisError):
                    await self.lock.release()
                raise failure
        with contextlib.suppress(RedisError):
            if await self.lock.release():
                log.info("released the scoring leader lock")
