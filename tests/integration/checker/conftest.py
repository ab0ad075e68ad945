"""Checker fixtures: migrated databases (SQLite and PostgreSQL), the machine's Redis."""

from __future__ import annotations

from tests.support.db import (  # noqa: F401 - fixtures, registered by being imported here
    fixture_db,
    fixture_db_url,
    fixture_fresh_sqlite_url,
    fixture_postgres_url,
    fixture_sqlite_url,
)
from tests.support.redis_fixtures import fixture_redis_client, fixture_redis_prefix  # noqa: F401
