"""API-key authentication for the hot path: no database read per request.

``KeyAuthenticator.authenticate(raw)`` resolves a secret to a ``KeyContext`` through three
levels:

1. an in-process cache (per replica, ``auth_cache_ttl_s``, a few seconds; unknown keys are
   cached too, ``auth_negative_ttl_s``);
2. Redis (shared by the replicas, ``auth_redis_ttl_s``), msgspec JSON under
   ``<prefix>billing:key:<hash>``;
3. the database.

Invalidation (``KeyCache.invalidate``, called after a key or account change commits):
``INCR`` a generation counter, ``DEL`` the Redis entries, ``PUBLISH`` the hashes. Every
authenticator listens on the channel and drops those entries at once; if it misses messages
(a reconnect) it clears its whole cache, and the short in-process TTL bounds staleness anyway.
A replica that read the database before the change commits cannot write its stale answer back
to Redis: the write is a compare-and-set on the generation read before the database lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from billing.errors import AccountSuspended, InvalidApiKey, ModelNotAllowed
from billing.keys.service import fetch_key_context
from billing.keys.store import KeyContext, KeyHasher, is_well_formed
from core.db.engine import Database

log = logging.getLogger(__name__)

_NEGATIVE = b"-"
_MISSING: Any = object()

# Set KEYS[1] to ARGV[1] for ARGV[2] ms only if the generation KEYS[2] still equals ARGV[3].
_CAS_SET = """
local gen = redis.call('GET', KEYS[2]) or '0'
if gen ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# INCR the generation, DEL the cached entries, PUBLISH the hashes: one atomic step.
_INVALIDATE = """
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""


class KeyCache:
    """The Redis level: cached contexts, the generation counter, the invalidation channel."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ttl_s: float = 60.0,
        negative_ttl_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self._prefix = f"{prefix}billing:key:"
        self.generation_key = f"{prefix}billing:keys:gen"
        self.channel = f"{prefix}billing:keys:invalidate"
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._negative_ttl_ms = max(1, int(negative_ttl_s * 1000))
        self._cas = redis.register_script(_CAS_SET)
        self._invalidate = redis.register_script(_INVALIDATE)

    def _key(self, secret_hash: str) -> str:
        return self._prefix + secret_hash

    async def get(self, secret_hash: str) -> KeyContext | None:
        """The cached context, None for a cached "no such key", or ``_MISSING``."""
        raw = await self.redis.get(self._key(secret_hash))
        if raw is None:
            return _MISSING  # type: ignore[no-any-return]
        if raw == _NEGATIVE:
            return None
        return msgspec.json.decode(raw, type=KeyContext)

    async def generation(self) -> bytes:
        value = await self.redis.get(self.generation_key)
        if value is None:
            return b"0"
        return value.encode() if isinstance(value, str) else value

    async def put(self, secret_hash: str, ctx: KeyContext | None, generation: bytes) -> bool:
        value = msgspec.json.encode(ctx) if ctx is not None else _NEGATIVE
        ttl = self._ttl_ms if ctx is not None else self._negative_ttl_ms
        done = await self._cas(
            keys=[self._key(secret_hash), self.generation_key], args=[value, ttl, generation]
        )
        return bool(done)

    async def invalidate(self, secret_hashes: Sequence[str]) -> None:
        """Make every replica forget these keys (call after the change has committed)."""
        if not secret_hashes:
            return
        await self._invalidate(
            keys=[self.generation_key, *(self._key(h) for h in secret_hashes)],
            args=[self.channel, ",".join(secret_hashes)],
        )


class KeyAuthenticator:
    def __init__(
        self,
        db: Database,
        hasher: KeyHasher,
        cache: KeyCache | None = None,
        *,
        local_ttl_s: float = 5.0,
        negative_ttl_s: float = 5.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._cache = cache
        self._ttl = local_ttl_s
        self._negative_ttl = negative_ttl_s
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._wall = wall
        self._local: dict[str, tuple[KeyContext | None, float]] = {}
        self._generation = 0
        self._inflight: dict[str, asyncio.Task[KeyContext | None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- the hot path ----------------------------------------------------------------------

    async def authenticate(self, raw_key: str) -> KeyContext:
        """The key's context; ``InvalidApiKey`` (401) for a malformed, unknown, revoked or
        expired key, ``AccountSuspended`` (403) when its account is suspended."""
        if not is_well_formed(raw_key):
            raise InvalidApiKey
        secret_hash = self._hasher.hash(raw_key)
        entry = self._local.get(secret_hash)
        if entry is not None and entry[1] > self._monotonic():
            ctx = entry[0]
        else:
            ctx = await self._resolve(secret_hash)
        return self._check(ctx)

    def authorize(self, ctx: KeyContext, model: str) -> None:
        """``ModelNotAllowed`` (403) when ``model`` is outside the key's allowlist."""
        if not ctx.allows(model):
            raise ModelNotAllowed(model)

    def _check(self, ctx: KeyContext | None) -> KeyContext:
        if ctx is None:
            raise InvalidApiKey
        if ctx.revoked:
            raise InvalidApiKey("This API key has been revoked.")
        if ctx.expires_at is not None and self._wall() >= ctx.expires_at:
            raise InvalidApiKey("This API key has expired.")
        if not ctx.account_active:
            raise AccountSuspended
        return ctx

    async def _resolve(self, secret_hash: str) -> KeyContext | None:
        """One lookup per hash at a time: concurrent cold requests share it. It runs as its own
        task, so a caller that goes away (client disconnect) does not cancel it for others."""
        task = self._inflight.get(secret_hash)
        if task is None:
            task = asyncio.create_task(self._lookup_and_remember(secret_hash))
            self._inflight[secret_hash] = task
            task.add_done_callback(lambda done: self._finished(secret_hash, done))
        return await asyncio.shield(task)

    def _finished(self, secret_hash: str, task: asyncio.Task[KeyContext | None]) -> None:
        if self._inflight.get(secret_hash) is task:
            del self._inflight[secret_hash]
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting callers re-raise it themselves

    async def _lookup_and_remember(self, secret_hash: str) -> KeyContext | None:
        generation = self._generation
        ctx = await self._lookup(secret_hash)
        if generation == self._generation:
            self._remember(secret_hash, ctx)
        return ctx

    def _remember(self, secret_hash: str, ctx: KeyContext | None) -> None:
        if len(self._local) >= self._max_entries:
            for stale in list(self._local)[: self._max_entries // 10 + 1]:
                del self._local[stale]
        ttl = self._ttl if ctx is not None else self._negative_ttl
        self._local[secret_hash] = (ctx, self._monotonic() + ttl)

    async def _lookup(self, secret_hash: str) -> KeyContext | None:
        generation: bytes | None = None
        if self._cache is not None:
            try:
                cached = await self._cache.get(secret_hash)
                if cached is not _MISSING:
                    return cached
                generation = await self._cache.generation()
            except RedisError as exc:
                log.warning("auth: Redis unavailable, reading the database (%s)", exc)
        async with self._db.read() as session:
            ctx = await fetch_key_context(session, secret_hash)
        if self._cache is not None and generation is not None:
            try:
                await self._cache.put(secret_hash, ctx, generation)
            except RedisError as exc:
                log.warning("auth: could not cache a key in Redis (%s)", exc)
        return ctx

    # -- invalidation ----------------------------------------------------------------------

    def drop(self, secret_hashes: Sequence[str]) -> None:
        self._generation += 1
        for secret_hash in secret_hashes:
            self._local.pop(secret_hash, None)

    def clear(self) -> None:
        self._generation += 1
        self._local.clear()

    async def start(self) -> None:
        """Start listening for invalidations (returns once subscribed)."""
        if self._cache is None or self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name="billing-key-invalidations")
        waiter = asyncio.create_task(self._subscribed.wait())
        await asyncio.wait(
            {waiter, self._listener}, timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        assert self._cache is not None
        while True:
            pubsub = self._cache.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._cache.channel)
                # Whatever happened while we were not subscribed is unknown: start afresh.
                self.clear()
                self._subscribed.set()
                async for message in pubsub.listen():
                    data = message.get("data")
                    if isinstance(data, bytes):
                        self.drop(data.decode("ascii", "replace").split(","))
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("auth: invalidation channel lost (%s); retrying", exc)
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()
