"""Scoring fixtures: the migrated session databases (SQLite and PostgreSQL) emptied of scoring
rows for each test, real Redis with a per-test prefix, a validator wallet and a network file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.db.engine import Database
from tests.support.db import (  # noqa: F401 - fixtures, registered by being imported here
    fixture_db,
    fixture_db_url,
    fixture_fresh_sqlite_url,
    fixture_pg_db,
    fixture_postgres_url,
    fixture_sqlite_url,
)
from tests.support.redis_fixtures import (  # noqa: F401
    REDIS_URL,
    fixture_redis_client,
    fixture_redis_prefix,
)
from tests.support.scoring import clear_scoring_tables, validator_hotkey


@pytest.fixture
async def scoring_db(db: Database) -> AsyncIterator[Database]:
    await clear_scoring_tables(db)
    yield db


@pytest.fixture
def validator(wallet_root: Path) -> str:
    return validator_hotkey(wallet_root)


@pytest.fixture
def chain_file(tmp_path: Path) -> Path:
    return tmp_path / "chain.txt"
