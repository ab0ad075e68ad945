"""Applying the Alembic migrations in ``migrations/`` from code (``sn19 db``, ``sn19 dev``,
tests). Imports Alembic, so it is not imported by ``core.db`` itself.

The synchronous functions start their own event loop (Alembic's async ``env.py`` runs
``asyncio.run``); from async code use the ``*_async`` variants, which run them in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from core.db.engine import create_engine
from protocol.config import ConfigError


class SchemaOutdated(ConfigError):
    """The database is missing or not at this code's migration head (`sn19 db upgrade`)."""


def migrations_dir() -> Path:
    """The ``migrations`` package directory (it holds ``alembic.ini`` and ``env.py``)."""
    spec = importlib.util.find_spec("migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "env.py").is_file():
            return Path(location)
    raise RuntimeError("the migrations package (env.py, versions/) is not installed")


def alembic_config(url: str) -> Config:
    directory = migrations_dir()
    config = Config(str(directory / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    # Passed as an attribute, not an ini option, so '%' in passwords needs no escaping.
    config.attributes["url"] = url
    return config


def sqlite_file_missing(url: str) -> bool:
    """True for a file-backed SQLite URL whose file does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(str(parsed.database)).expanduser().exists()


def _make_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database not in (None, "", ":memory:"):
        Path(str(database)).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision_async(url: str) -> str | None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


def current_revision(url: str) -> str | None:
    return asyncio.run(current_revision_async(url))


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


async def require_head(url: str) -> None:
    """Raise ``SchemaOutdated`` unless the database exists and is at the migrations' head."""
    if sqlite_file_missing(url):
        raise SchemaOutdated(f"no database at {url}: run `sn19 db upgrade` first")
    current, head = await current_revision_async(url), await asyncio.to_thread(head_revision)
    if current != head:
        raise SchemaOutdated(
            f"the database is at revision {current or '(empty)'} and this code expects "
            f"{head}: run `sn19 db upgrade` first"
        )


async def ensure_schema(url: str, *, attempts: int = 30) -> None:
    """At a process's start. SQLite (the embedded default of `sn19 dev`, where nothing else
    migrates): migrate to head, waiting out another process migrating at the same moment.
    PostgreSQL: refuse to start below head (``require_head``; `sn19 db upgrade` migrates)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines start at import
    if make_url(url).get_backend_name() != "sqlite":
        await require_head(url)
        return
    await asyncio.to_thread(_make_sqlite_folder, url)
    head = await asyncio.to_thread(head_revision)
    for _ in range(attempts):
        with contextlib.suppress(Exception):
            await upgrade_async(url)
        if await current_revision_async(url) == head:
            return
        await asyncio.sleep(1.0)
    raise ConfigError(f"the database {url} could not be migrated to {head}")
