"""The auth caches with a real Redis: no database read while cached, and revocation reaching a
second replica within seconds."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

import billing.keys.auth as auth_module
from billing import Billing, InvalidApiKey, KeyAuthenticator, KeyCache
from billing.keys.store import generate_secret
from core.db.engine import Database
from core.settings import Settings
from protocol.catalog import Catalog
from tests.integration.billing.conftest import fund

pytestmark = pytest.mark.redis


@pytest.fixture
def db_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = auth_module.fetch_key_context

    async def counting(session: object, secret_hash: str) -> object:
        calls.append(secret_hash)
        return await original(session, secret_hash)  # type: ignore[arg-type]

    monkeypatch.setattr(auth_module, "fetch_key_context", counting)
    return calls


def _replica(billing: Billing, redis: Redis, prefix: str, **kw: float) -> KeyAuthenticator:
    return KeyAuthenticator(
        billing.db,
        billing.hasher,
        KeyCache(redis, prefix),
        **kw,  # type: ignore[arg-type]
    )


async def test_cached_auth_reads_the_database_once(
    redis_billing: Billing, redis_client: Redis, redis_prefix: str, db_reads: list[str]
) -> None:
    _, secret = await fund(redis_billing, 0)
    assert redis_billing.cache is not None
    await redis_billing.cache.invalidate([redis_billing.hasher.hash(secret)])
    redis_billing.authenticator.clear()
    db_reads.clear()
    replica_a = redis_billing.authenticator
    replica_b = _replica(redis_billing, redis_client, redis_prefix)
    for _ in range(50):
        await replica_a.authenticate(secret)
    assert len(db_reads) == 1  # then in-process cache
    await asyncio.gather(*(replica_b.authenticate(secret) for _ in range(50)))
    assert len(db_reads) == 1  # replica B found it in Redis


async def test_concurrent_cold_lookups_are_coalesced(
    redis_billing: Billing, redis_client: Redis, redis_prefix: str, db_reads: list[str]
) -> None:
    _, secret = await fund(redis_billing, 0)
    db_reads.clear()
    # A replica with an empty Redis namespace of its own: everything is cold.
    fresh = _replica(redis_billing, redis_client, redis_prefix + "cold:")
    await asyncio.gather(*(fresh.authenticate(secret) for _ in range(100)))
    assert len(db_reads) == 1


async def test_revocation_reaches_another_replica_within_seconds(
    redis_billing: Billing, redis_client: Redis, redis_prefix: str
) -> None:
    ctx, secret = await fund(redis_billing, 0)
    # Replica B: long local TTL, so only the invalidation message can make it forget.
    replica_b = _replica(redis_billing, redis_client, redis_prefix, local_ttl_s=3600.0)
    await replica_b.start()
    try:
        await replica_b.authenticate(secret)
        await redis_billing.authenticator.authenticate(secret)
        started = time.monotonic()
        await redis_billing.keys.revoke(ctx.key_id)
        while True:
            try:
                await replica_b.authenticate(secret)
            except InvalidApiKey:
                break
            assert time.monotonic() - started < 3.0, "replica B still accepts a revoked key"
            await asyncio.sleep(0.02)
        with pytest.raises(InvalidApiKey):
            await redis_billing.authenticator.authenticate(secret)
    finally:
        await replica_b.aclose()


async def test_suspension_and_updates_propagate(
    redis_billing: Billing, redis_client: Redis, redis_prefix: str
) -> None:
    ctx, secret = await fund(redis_billing, 0)
    replica_b = _replica(redis_billing, redis_client, redis_prefix, local_ttl_s=3600.0)
    await replica_b.start()
    try:
        assert (await replica_b.authenticate(secret)).rpm_limit is None
        await redis_billing.keys.update(ctx.key_id, rpm_limit=7)
        await _eventually(lambda: replica_b.authenticate(secret), lambda c: c.rpm_limit == 7)
        await redis_billing.accounts.set_status(ctx.account_id, "suspended")
        await _eventually(lambda: replica_b.authenticate(secret), None, expect_error=True)
    finally:
        await replica_b.aclose()


async def _eventually(call, check, *, expect_error: bool = False) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            value = await call()
        except Exception:
            if expect_error:
                return
            raise
        if not expect_error and check(value):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the change did not propagate within 3s")


async def test_unknown_key_is_negatively_cached_until_created(
    settings: Settings, db: Database, dev_catalog: Catalog, redis_client: Redis, db_reads: list[str]
) -> None:
    billing = Billing.create(settings, dev_catalog, db, redis_client)
    secret = generate_secret()
    for _ in range(20):
        with pytest.raises(InvalidApiKey):
            await billing.authenticator.authenticate(secret)
    assert len(db_reads) == 1
    account = await billing.accounts.create("late")
    await billing.keys.create(account.id, "imported", secret=secret)  # invalidates the "-" entry
    billing.authenticator.clear()  # (no listener started in this test)
    assert (await billing.authenticator.authenticate(secret)).account_id == account.id


async def test_stale_database_read_cannot_repopulate_redis(
    redis_billing: Billing, redis_client: Redis, redis_prefix: str
) -> None:
    ctx, secret = await fund(redis_billing, 0)
    cache = KeyCache(redis_client, redis_prefix)
    secret_hash = redis_billing.hasher.hash(secret)
    generation = await cache.generation()
    # Between this replica's read of the generation and its write, the key is revoked.
    await redis_billing.keys.revoke(ctx.key_id)
    stale = await _context_before_revocation(redis_billing, secret)
    assert await cache.put(secret_hash, stale, generation) is False
    assert await redis_client.get(f"{redis_prefix}billing:key:{secret_hash}") is None
    # With the current generation the (fresh) answer is cached.
    assert await cache.put(secret_hash, stale, await cache.generation()) is True


async def _context_before_revocation(billing: Billing, secret: str):  # type: ignore[no-untyped-def]
    from msgspec.structs import replace

    from billing.keys.service import fetch_key_context

    async with billing.db.read() as session:
        ctx = await fetch_key_context(session, billing.hasher.hash(secret))
    assert ctx is not None
    return replace(ctx, revoked=False)


async def test_redis_outage_falls_back_to_the_database(
    settings: Settings, db: Database, dev_catalog: Catalog
) -> None:
    from core.redis import create_redis

    _, secret = await fund(Billing.create(settings, dev_catalog, db, None), 0)
    dead = create_redis("redis://127.0.0.1:1/0")
    billing = Billing.create(settings, dev_catalog, db, dead)
    assert (await billing.authenticator.authenticate(secret)).key_id > 0
    await dead.aclose()
