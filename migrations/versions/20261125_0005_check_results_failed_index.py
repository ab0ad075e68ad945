"""check_results: a partial index on failed checks (quality < 0.5)

The dashboard's miner pages (``scoring.read.board``) count each miner's failed checks of the last
24 hours and list its latest ones; failures are a few percent of the rows, so a partial index
on (miner_hotkey, created_at, task) answers both without reading the other checks.

Revision ID: 0005_failed_checks
Revises: 0004_checker
Create Date: 2026-11-25 13:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_failed_checks"
down_revision: str | None = "0004_checker"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILED = "quality < 0.5"


def upgrade() -> None:
    with op.batch_alter_table("check_results") as batch_op:
        batch_op.create_index(
            "ix_check_results_failed",
            ["miner_hotkey", "created_at", "task"],
            unique=False,
            postgresql_where=sa.text(FAILED),
            sqlite_where=sa.text(FAILED),
        )


def downgrade() -> None:
    with op.batch_alter_table("check_results") as batch_op:
        batch_op.drop_index("ix_check_results_failed")
