"""scoring tables: nodes, periods, contenders, check results, weight runs

``nodes``/``node_history`` hold the synced metagraph; ``periods`` (at most one open: a partial
unique index) and ``contenders`` the validator loop; ``check_results`` the checker's scores that
quality and speed are computed from; ``weight_runs``, ``weight_run_factors`` and
``weight_run_weights`` every weight calculation with its inputs and outputs.

Revision ID: 0003_scoring
Revises: 0002_web
Create Date: 2026-11-25 11:37:38.011725+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.base

revision: str = "0003_scoring"
down_revision: str | None = "0002_web"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, core.db.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "check_results",
        sa.Column("id", _ID, nullable=False),
        sa.Column("task", sa.String(length=128), nullable=False),
        sa.Column("miner_hotkey", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("work", sa.Float(), nullable=False),
        sa.Column("response_time_s", sa.Float(), nullable=False),
        sa.Column("organic", sa.Boolean(), nullable=False),
        _time("created_at"),
        sa.CheckConstraint("quality >= 0 AND quality <= 1", name=op.f("ck_check_results_quality")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_results")),
    )
    with op.batch_alter_table("check_results") as batch_op:
        batch_op.create_index(
            "ix_check_results_task_created_at", ["task", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_check_results_task_miner_hotkey_created_at",
            ["task", "miner_hotkey", "created_at"],
            unique=False,
        )

    op.create_table(
        "node_history",
        sa.Column("id", _ID, nullable=False),
        sa.Column("netuid", sa.Integer(), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("coldkey", sa.String(length=64), nullable=False),
        sa.Column("stake", sa.Float(), nullable=False),
        sa.Column("axon", sa.String(length=128), nullable=True),
        sa.Column("validator_permit", sa.Boolean(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        _time("recorded_at"),
        sa.CheckConstraint(
            "event IN ('registered', 'changed', 'deregistered')", name=op.f("ck_node_history_event")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_history")),
    )
    with op.batch_alter_table("node_history") as batch_op:
        batch_op.create_index(
            "ix_node_history_hotkey_recorded_at", ["hotkey", "recorded_at"], unique=False
        )

    op.create_table(
        "nodes",
        sa.Column("netuid", sa.Integer(), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("coldkey", sa.String(length=64), nullable=False),
        sa.Column("stake", sa.Float(), nullable=False),
        sa.Column("axon", sa.String(length=128), nullable=True),
        sa.Column("validator_permit", sa.Boolean(), nullable=False),
        sa.Column("tls_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=False),
        _time("first_seen_at"),
        _time("synced_at"),
        sa.PrimaryKeyConstraint("netuid", "hotkey", name=op.f("pk_nodes")),
        sa.UniqueConstraint("netuid", "uid", name=op.f("uq_nodes_netuid_uid")),
    )
    op.create_table(
        "periods",
        sa.Column("id", _ID, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        _time("started_at"),
        _time("ends_at"),
        _time("closed_at", nullable=True),
        sa.Column("period_s", sa.Float(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_periods_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_periods")),
    )
    with op.batch_alter_table("periods") as batch_op:
        batch_op.create_index(
            "uq_periods_open",
            ["status"],
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "weight_runs",
        sa.Column("id", _ID, nullable=False),
        _time("created_at"),
        sa.Column("period_id", sa.BigInteger(), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("version_key", sa.BigInteger(), nullable=True),
        sa.Column("task_weights", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        _time("set_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('computed', 'set', 'refused', 'unavailable', 'skipped')",
            name=op.f("ck_weight_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weight_runs")),
    )
    with op.batch_alter_table("weight_runs") as batch_op:
        batch_op.create_index("ix_weight_runs_created_at", ["created_at"], unique=False)

    op.create_table(
        "contenders",
        sa.Column("id", _ID, nullable=False),
        sa.Column("period_id", _ID, nullable=False),
        sa.Column("task", sa.String(length=128), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=256), nullable=False),
        sa.Column("announced", sa.Float(), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("quota_multiplier", sa.Float(), nullable=False),
        sa.Column("quota", sa.Float(), nullable=False),
        sa.Column("consumed", sa.Float(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("rate_limited", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("organic_volume", sa.Float(), nullable=False),
        sa.Column("organic_requests", sa.BigInteger(), nullable=False),
        sa.Column("synthetic_requests", sa.BigInteger(), nullable=False),
        sa.Column("period_score", sa.Float(), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["periods.id"],
            name=op.f("fk_contenders_period_id_periods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contenders")),
        sa.UniqueConstraint(
            "period_id", "task", "hotkey", name=op.f("uq_contenders_period_id_task_hotkey")
        ),
    )
    with op.batch_alter_table("contenders") as batch_op:
        batch_op.create_index(
            "ix_contenders_task_hotkey_period_id", ["task", "hotkey", "period_id"], unique=False
        )

    op.create_table(
        "weight_run_factors",
        sa.Column("id", _ID, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("task", sa.String(length=128), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("check_count", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=True),
        sa.Column("speed_metric", sa.Float(), nullable=True),
        sa.Column("speed_bonus", sa.Float(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("periods_scored", sa.Integer(), nullable=False),
        sa.Column("period_history", sa.Float(), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("effective", sa.Float(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("cubed_share", sa.Float(), nullable=False),
        sa.Column("task_weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["weight_runs.id"],
            name=op.f("fk_weight_run_factors_run_id_weight_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weight_run_factors")),
        sa.UniqueConstraint(
            "run_id", "task", "hotkey", name=op.f("uq_weight_run_factors_run_id_task_hotkey")
        ),
    )
    op.create_table(
        "weight_run_weights",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("weight_u16", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["weight_runs.id"],
            name=op.f("fk_weight_run_weights_run_id_weight_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "hotkey", name=op.f("pk_weight_run_weights")),
    )


def downgrade() -> None:
    op.drop_table("weight_run_weights")
    op.drop_table("weight_run_factors")
    with op.batch_alter_table("contenders") as batch_op:
        batch_op.drop_index("ix_contenders_task_hotkey_period_id")

    op.drop_table("contenders")
    with op.batch_alter_table("weight_runs") as batch_op:
        batch_op.drop_index("ix_weight_runs_created_at")

    op.drop_table("weight_runs")
    with op.batch_alter_table("periods") as batch_op:
        batch_op.drop_index(
            "uq_periods_open",
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )

    op.drop_table("periods")
    op.drop_table("nodes")
    with op.batch_alter_table("node_history") as batch_op:
        batch_op.drop_index("ix_node_history_hotkey_recorded_at")

    op.drop_table("node_history")
    with op.batch_alter_table("check_results") as batch_op:
        batch_op.drop_index("ix_check_results_task_miner_hotkey_created_at")
        batch_op.drop_index("ix_check_results_task_created_at")

    op.drop_table("check_results")
