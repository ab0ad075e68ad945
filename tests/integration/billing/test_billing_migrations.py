"""The migrations build exactly the models' schema on SQLite and PostgreSQL, and the ledger is
append-only at the database level."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from billing.accounts import AccountService
from core.db.engine import Database
from core.db.migrate import current_revision_async, head_revision, upgrade
from core.db.tables import metadata
from tests.support.db import (
    create_postgres_database,
    create_sqlite_database,
    drop_postgres_database,
    run_in_thread,
)


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _assert_matches_models(url: str) -> None:
    database = Database.from_url(url)
    try:
        assert await current_revision_async(url) == head_revision()
        async with database.engine.connect() as connection:
            diff = await connection.run_sync(_diff)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        await database.dispose()


async def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = run_in_thread(create_sqlite_database, tmp_path)
    await _assert_matches_models(url)
    # Upgrading again is a no-op.
    run_in_thread(upgrade, url)
    await _assert_matches_models(url)


@pytest.mark.postgres
async def test_postgres_migrations_match_models() -> None:
    url = run_in_thread(create_postgres_database, "sn19_mig")
    try:
        await _assert_matches_models(url)
    finally:
        run_in_thread(drop_postgres_database, url)


async def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    from alembic import command

    from core.db.migrate import alembic_config

    url = run_in_thread(create_sqlite_database, tmp_path)
    run_in_thread(command.downgrade, alembic_config(url), "base")
    assert await current_revision_async(url) is None
    run_in_thread(upgrade, url)
    await _assert_matches_models(url)


async def test_ledger_is_append_only(db: Database) -> None:
    accounts = AccountService(db)
    account_id = (await accounts.create("append-only")).id
    await accounts.grant(account_id, 5, actor="test", reason="r")
    for statement in (
        "UPDATE ledger_entries SET amount = 1000 WHERE account_id = :a",
        "DELETE FROM ledger_entries WHERE account_id = :a",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction() as session:
                await session.execute(text(statement), {"a": account_id})
    async with db.read() as session:
        amount = (
            await session.execute(
                text("SELECT amount FROM ledger_entries WHERE account_id = :a"), {"a": account_id}
            )
        ).scalar_one()
    assert amount == 5


async def test_sqlite_pragmas(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url)
    try:
        async with database.read() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await session.execute(text("PRAGMA busy_timeout"))).scalar_one() == 30000
    finally:
        await database.dispose()
