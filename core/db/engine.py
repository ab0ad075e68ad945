"""The async engine and the unit-of-work boundary.

``Database`` wraps one ``AsyncEngine``. Code that changes data runs inside
``async with db.transaction() as session:``: the block is one database transaction that
commits when the block exits normally and rolls back when it raises. Services and repository
functions never call ``commit()`` themselves; this context manager is the only place that does.
Read-only work uses ``db.read()``, which always rolls back.

SQLite (the embedded default): WAL journal, foreign keys on, a busy timeout, and SQLAlchemy
emits ``BEGIN`` itself instead of the sqlite3 driver's legacy implicit transactions. Write
transactions start with ``BEGIN IMMEDIATE``: they take the database's single write lock up front
(waiting up to the busy timeout), so a transaction that reads and then writes can never fail on
a stale snapshot, and writers are serialised. Read transactions use a deferred ``BEGIN`` and run
beside writers (WAL).

PostgreSQL (production): asyncpg, a connection pool sized from settings, READ COMMITTED.
Conditional updates (``UPDATE ... WHERE balance >= :amount``) take the row lock and re-check
the condition against the latest committed row, which is what keeps concurrent debits safe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.db.dialect import SUPPORTED_DIALECTS
from core.settings import DatabaseSettings
from protocol.config import ConfigError

_WRITE = "sn19_write"


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (below) instead of the driver's legacy transaction control.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout_s: float = 30.0,
    echo: bool = False,
    sqlite_busy_timeout_ms: int = 30_000,
) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {} if memory else {"pool_size": pool_size}
        engine = create_async_engine(url, echo=echo, **kwargs)
        _install_sqlite_hooks(engine, sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
    )


class Database:
    """One engine plus the two kinds of unit of work (write transaction, read snapshot)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect not in SUPPORTED_DIALECTS:
            raise ConfigError(
                f"database: {self.dialect} is not supported; use a postgresql+asyncpg:// URL "
                "or leave database.url empty for SQLite"
            )
        self._write_sessions = async_sessionmaker(
            engine.execution_options(**{_WRITE: True}), expire_on_commit=False
        )
        self._read_sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, settings: DatabaseSettings | None = None) -> Database:
        s = settings or DatabaseSettings()
        return cls(
            create_engine(
                url,
                pool_size=s.pool_size,
                max_overflow=s.max_overflow,
                pool_timeout_s=s.pool_timeout_s,
                echo=s.echo,
                sqlite_busy_timeout_ms=s.sqlite_busy_timeout_ms,
            )
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: commits on normal exit, rolls back if the block raises."""
        async with self._write_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work: never committed. Closing the session ends its transaction
        (rolled back); objects loaded inside stay readable afterwards (they are detached, not
        expired)."""
        async with self._read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
