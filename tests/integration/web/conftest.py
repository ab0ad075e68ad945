"""Dashboard fixtures: migrated databases (SQLite and PostgreSQL), the dashboard mounted at
/dashboard in a parent app, clients, users and accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar import Litestar

from billing import Billing
from core.db.engine import Database
from core.settings import Settings
from protocol.catalog import Catalog
from tests.support.dashboard import FormClient, build_app, make_user, web_settings
from tests.support.db import (  # noqa: F401 - fixtures, registered by being imported here
    fixture_db,
    fixture_db_url,
    fixture_fresh_sqlite_url,
    fixture_pg_db,
    fixture_postgres_url,
    fixture_sqlite_url,
)
from tests.support.redis_fixtures import fixture_redis_client, fixture_redis_prefix  # noqa: F401
from web import User


@pytest.fixture
def settings(redis_prefix: str) -> Settings:
    return web_settings(redis_prefix)


@pytest.fixture
def billing(settings: Settings, db: Database, dev_catalog: Catalog) -> Billing:
    return Billing.create(settings, dev_catalog, db, None)


@pytest.fixture
def app(settings: Settings, db: Database, billing: Billing, dev_catalog: Catalog) -> Litestar:
    return build_app(settings, db, billing, dev_catalog)


Clients = Callable[..., FormClient]


@pytest.fixture
async def clients(app: Litestar) -> AsyncIterator[Clients]:
    """``clients()`` -> a new browser-like client (its own cookies) on the app."""
    made: list[FormClient] = []

    def make(**kwargs: Any) -> FormClient:
        client = FormClient(app, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


Users = Callable[..., Awaitable[User]]


@pytest.fixture
def users(db: Database) -> Users:
    """``await users("admin")`` / ``await users("customer", account_id=...)``."""

    async def make(role: str, **kwargs: Any) -> User:
        return await make_user(db, role, **kwargs)

    return make


async def signed_in(clients: Clients, user: User) -> FormClient:
    client = clients()
    await client.login(user.email)
    return client
