"""The scoring revision: up and down on SQLite, and the one-open-period index on both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from core.db import Database, utcnow
from core.db.migrate import alembic_config, current_revision_async, head_revision, upgrade
from core.db.tables.scoring import Period
from tests.support.db import create_sqlite_database, run_in_thread

SCORING_TABLES = {
    "nodes",
    "node_history",
    "periods",
    "contenders",
    "check_results",
    "weight_runs",
    "weight_run_factors",
    "weight_run_weights",
}


async def _tables(url: str) -> set[str]:
    database = Database.from_url(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await database.dispose()


async def test_scoring_revision_up_and_down(tmp_path: Path) -> None:
    url = run_in_thread(create_sqlite_database, tmp_path)
    assert await current_revision_async(url) == head_revision()
    assert await _tables(url) >= SCORING_TABLES
    run_in_thread(command.downgrade, alembic_config(url), "0002_web")
    tables = await _tables(url)
    assert not SCORING_TABLES & tables and "web_sessions" in tables
    run_in_thread(upgrade, url)
    assert await _tables(url) >= SCORING_TABLES


def _period(status: str) -> Period:
    now = utcnow()
    return Period(
        status=status,
        started_at=now,
        ends_at=now + timedelta(seconds=60),
        period_s=60.0,
        opened_by="t",
        seed=0,
    )


async def test_at_most_one_open_period(scoring_db: Database) -> None:
    async with scoring_db.transaction() as session:
        session.add_all([_period("open"), _period("closed"), _period("closed")])
    with pytest.raises(IntegrityError):
        async with scoring_db.transaction() as session:
            session.add(_period("open"))
