"""request provenance (request_receipts, check_jobs by request id) and one-time views

- ``request_receipts``: the miner and its verified receipt for each delivered request
  (``GET /v1/requests/{id}``; written by ``gateway.provenance``).
- ``ix_check_jobs_request_id``: a request's check, if it was sampled.
- ``web_one_time_views``: a new key's secret or an invitation link, shown once after the
  form's redirect (sealed; see ``core/db/tables/web.py``).

Revision ID: 0006_people
Revises: 0005_failed_checks
Create Date: 2026-12-06 01:02:33.433781+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.base

revision: str = "0006_people"
down_revision: str | None = "0005_failed_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("task", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("miner_hotkey", sa.String(length=64), nullable=False),
        sa.Column("miner_uid", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("receipt_status", sa.String(length=16), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("ttft_s", sa.Float(), nullable=True),
        sa.Column("total_s", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_receipts")),
    )
    with op.batch_alter_table("request_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_receipts_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_request_receipts_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "web_one_time_views",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column(
            "session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("back", sa.String(length=300), nullable=False),
        sa.Column("created_at", core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["web_sessions.id"],
            name=op.f("fk_web_one_time_views_session_id_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_one_time_views")),
    )
    with op.batch_alter_table("web_one_time_views", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_one_time_views_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("check_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_check_jobs_request_id", ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("check_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_check_jobs_request_id")

    with op.batch_alter_table("web_one_time_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_one_time_views_expires_at"))

    op.drop_table("web_one_time_views")
    with op.batch_alter_table("request_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_receipts_request_id"))
        batch_op.drop_index(batch_op.f("ix_request_receipts_created_at"))

    op.drop_table("request_receipts")
