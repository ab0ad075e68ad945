"""Billing fixtures: migrated databases (SQLite and PostgreSQL), real Redis, a Billing per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from billing import Billing, KeyContext
from core.db.engine import Database
from core.settings import Settings
from protocol.catalog import Catalog, Task
from tests.support.db import (  # noqa: F401 - fixtures, registered by being imported here
    fixture_db,
    fixture_db_url,
    fixture_fresh_sqlite_url,
    fixture_pg_db,
    fixture_postgres_url,
    fixture_sqlite_url,
)
from tests.support.redis_fixtures import fixture_redis_client, fixture_redis_prefix  # noqa: F401

_names = itertools.count()


def make_settings(prefix: str = "sn19test:", **billing: Any) -> Settings:
    return Settings.from_env(
        {},
        overrides={
            "environment": "dev",
            "redis": {"key_prefix": prefix},
            "billing": {"key_hash_secret": "test-key-hash-secret", **billing},
        },
    )


@pytest.fixture
def settings(redis_prefix: str) -> Settings:
    return make_settings(redis_prefix)


@pytest.fixture
def billing(settings: Settings, db: Database, dev_catalog: Catalog) -> Billing:
    return Billing.create(settings, dev_catalog, db, None)


@pytest.fixture
def chat_task(dev_catalog: Catalog) -> Task:
    task = dev_catalog.get("sn19-tiny-chat")
    assert task is not None
    return task


@pytest.fixture
def image_task(dev_catalog: Catalog) -> Task:
    task = dev_catalog.get("sn19-tiny-diffusion")
    assert task is not None
    return task


@pytest.fixture
def embedding_task(dev_catalog: Catalog) -> Task:
    task = dev_catalog.get("all-minilm-l6-v2")
    assert task is not None
    return task


Funded = Callable[..., Awaitable[tuple[KeyContext, str]]]


async def fund(billing: Billing, amount: int, **key_fields: Any) -> tuple[KeyContext, str]:
    """A new account with ``amount`` micro-credits and one key: (KeyContext, secret)."""
    account = await billing.accounts.create(f"acct-{next(_names)}")
    if amount:
        await billing.accounts.grant(account.id, amount, actor="test", reason="fixture")
    key_fields.setdefault("rpm_limit", None)
    key_fields.setdefault("tpm_limit", None)
    created = await billing.keys.create(account.id, "test key", **key_fields)
    ctx = await billing.authenticator.authenticate(created.secret)
    return ctx, created.secret


@pytest.fixture
def funded(billing: Billing) -> Funded:
    """``await funded(micro_credits, **key_fields)`` -> (KeyContext, secret) on a new account."""

    async def make(amount: int, **key_fields: Any) -> tuple[KeyContext, str]:
        return await fund(billing, amount, **key_fields)

    return make


@pytest.fixture
def pg_billing(settings: Settings, pg_db: Database, dev_catalog: Catalog) -> Billing:
    """PostgreSQL only."""
    return Billing.create(settings, dev_catalog, pg_db, None)


@pytest.fixture
async def redis_billing(
    settings: Settings, db: Database, dev_catalog: Catalog, redis_client: Redis
) -> AsyncIterator[Billing]:
    billing = Billing.create(settings, dev_catalog, db, redis_client)
    await billing.start()
    yield billing
    await billing.aclose()
