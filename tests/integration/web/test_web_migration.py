"""The dashboard's migration: upgrade from billing's revision, downgrade back, and the schema
equals the models (the billing migration test checks the whole metadata on both backends)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from core.db.engine import Database
from core.db.migrate import alembic_config, current_revision_async, head_revision, upgrade
from tests.support.db import create_sqlite_database, run_in_thread

WEB_TABLES = {"web_sessions", "web_invitations", "web_audit_log", "web_settings"}


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    database = Database.from_url(url)
    try:
        async with database.engine.connect() as connection:

            def read(sync: object) -> tuple[set[str], set[str]]:
                inspector = inspect(sync)
                return set(inspector.get_table_names()), {
                    index["name"] for index in inspector.get_indexes("usage_records")
                }

            return await connection.run_sync(read)
    finally:
        await database.dispose()


async def test_web_revision_up_and_down(tmp_path: Path) -> None:
    url = run_in_thread(create_sqlite_database, tmp_path)
    assert await current_revision_async(url) == head_revision()
    tables, indexes = await _tables_and_indexes(url)
    assert tables >= WEB_TABLES and "ix_usage_records_account_id_id" in indexes
    # Down to billing's revision (later revisions, built on this one, go first).
    run_in_thread(command.downgrade, alembic_config(url), "0001")
    tables, indexes = await _tables_and_indexes(url)
    assert not WEB_TABLES & tables and "ix_usage_records_account_id_id" not in indexes
    assert "operators" in tables
    run_in_thread(upgrade, url)
    assert (await _tables_and_indexes(url))[0] >= WEB_TABLES
