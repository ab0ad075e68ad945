"""Migrated test databases: one SQLite file and one PostgreSQL database per test session (per
xdist worker), both built with ``alembic upgrade head`` so the migrations are tested too.

- ``SN19_TEST_POSTGRES_URL`` names the server (default
  ``postgresql+asyncpg://postgres@127.0.0.1:5432/sn19_test``); a fresh database
  ``sn19_t_<worker>_<random>`` is created on it and dropped at the end. Postgres tests carry
  ``@pytest.mark.postgres`` and FAIL (never skip) when the server is unreachable.
- ``db`` is parametrised over both backends; tests isolate themselves by creating their own
  accounts and keys (money operations commit their own transactions, so a per-test rollback
  would not undo them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from core.db.engine import Database
from core.db.migrate import upgrade

T = TypeVar("T")

POSTGRES_URL = os.environ.get(
    "SN19_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/sn19_test"
)


def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking code that starts its own event loop (Alembic) off the test's loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_postgres_database(prefix: str = "sn19_t", *, migrate: bool = True) -> str:
    """A fresh database on the test server, migrated unless ``migrate`` is False; its
    SQLAlchemy URL."""
    name = f"{prefix}_{_worker()}_{uuid.uuid4().hex[:8]}".lower()
    asyncio.run(_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    if migrate:
        upgrade(url)
    return url


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    asyncio.run(_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def create_sqlite_database(directory: Path) -> str:
    url = f"sqlite+aiosqlite:///{directory / f'sn19-{uuid.uuid4().hex[:8]}.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session", name="sqlite_url")
def fixture_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_in_thread(create_sqlite_database, tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session", name="postgres_url")
def fixture_postgres_url() -> Iterator[str]:
    url = run_in_thread(create_postgres_database)
    yield url
    run_in_thread(drop_postgres_database, url)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], name="db_url"
)
def fixture_db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(name="db")
async def fixture_db(db_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(db_url)
    yield database
    await database.dispose()


@pytest.fixture(name="pg_db")
async def fixture_pg_db(postgres_url: str) -> AsyncIterator[Database]:
    """PostgreSQL only (concurrency tests that must run against row locks)."""
    database = Database.from_url(postgres_url)
    yield database
    await database.dispose()


@pytest.fixture(name="fresh_sqlite_url")
def fixture_fresh_sqlite_url(tmp_path: Path) -> str:
    """A database of its own (tests that corrupt it on purpose, CLI tests)."""
    return run_in_thread(create_sqlite_database, tmp_path)
