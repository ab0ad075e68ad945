"""checker tables: check_jobs (one row per stored check job), check_detectors

``check_jobs`` keys every stored check by its job id (a redelivered job never writes a second
``check_results`` row) and keeps the reason, the evidence, the miner uid and the receipt;
``check_detectors`` holds the per-miner sequential statistics of the text check.

Revision ID: 0004_checker
Revises: 0003_scoring
Create Date: 2026-11-25 14:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.base

revision: str = "0004_checker"
down_revision: str | None = "0003_scoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, core.db.base.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "check_jobs",
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("result_id", _ID, nullable=True),
        sa.Column("task", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("miner_hotkey", sa.String(length=64), nullable=False),
        sa.Column("miner_uid", sa.Integer(), nullable=False),
        sa.Column("organic", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=256), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("check_seconds", sa.Float(), nullable=False),
        sa.Column("checker_version", sa.String(length=32), nullable=False),
        sa.Column("checked_by", sa.String(length=128), nullable=False),
        _time("checked_at"),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["check_results.id"],
            name=op.f("fk_check_jobs_result_id_check_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_check_jobs")),
    )
    with op.batch_alter_table("check_jobs") as batch_op:
        batch_op.create_index(batch_op.f("ix_check_jobs_result_id"), ["result_id"], unique=False)
        batch_op.create_index(
            "ix_check_jobs_task_miner_hotkey_checked_at",
            ["task", "miner_hotkey", "checked_at"],
            unique=False,
        )

    op.create_table(
        "check_detectors",
        sa.Column("task", sa.String(length=128), nullable=False),
        sa.Column("miner_hotkey", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("log_value", sa.Float(), nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.Column("alarms", sa.BigInteger(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("task", "miner_hotkey", "name", name=op.f("pk_check_detectors")),
    )


def downgrade() -> None:
    op.drop_table("check_detectors")
    with op.batch_alter_table("check_jobs") as batch_op:
        batch_op.drop_index("ix_check_jobs_task_miner_hotkey_checked_at")
        batch_op.drop_index(batch_op.f("ix_check_jobs_result_id"))
    op.drop_table("check_jobs")
