"""web dashboard tables: sessions, invitations, audit log, site settings; an index on usage_records

Dashboard users are rows of the existing ``operators`` table. The index
``ix_usage_records_account_id_id`` serves the dashboard's keyset pages of an account's usage
records (``WHERE account_id = ? AND id < ? ORDER BY id DESC``). On a large PostgreSQL
``usage_records`` table, building it blocks writes to that table while it runs; operators with
a big table can create it first with ``CREATE INDEX CONCURRENTLY`` (same name), and this
migration then skips it.

Revision ID: 0002_web
Revises: 0001
Create Date: 2026-11-25 11:03:55.480527+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.base

revision: str = "0002_web"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_USAGE_INDEX = "ix_usage_records_account_id_id"


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, core.db.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "web_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=1000), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_web_settings")),
    )
    op.create_table(
        "web_invitations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("accepted_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'support', 'customer')", name=op.f("ck_web_invitations_role")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_web_invitations_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_invitations_token_hash")),
    )
    op.create_index(
        op.f("ix_web_invitations_account_id"), "web_invitations", ["account_id"], unique=False
    )
    op.create_table(
        "web_audit_log",
        sa.Column("id", _ID, nullable=False),
        _time("created_at"),
        sa.Column("actor_id", _ID, nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_web_audit_log_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["operators.id"], name=op.f("fk_web_audit_log_actor_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_audit_log")),
    )
    op.create_index(
        "ix_web_audit_log_account_id_id", "web_audit_log", ["account_id", "id"], unique=False
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        _time("created_at"),
        _time("last_seen_at"),
        _time("expires_at"),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["operators.id"], name=op.f("fk_web_sessions_user_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])
    if not _has_index("usage_records", _USAGE_INDEX):
        op.create_index(_USAGE_INDEX, "usage_records", ["account_id", "id"], unique=False)


def _has_index(table: str, name: str) -> bool:
    inspector = sa.inspect(op.get_bind())
    return any(index["name"] == name for index in inspector.get_indexes(table))


def downgrade() -> None:
    op.drop_index(_USAGE_INDEX, table_name="usage_records")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_index(op.f("ix_web_sessions_expires_at"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_web_audit_log_account_id_id", table_name="web_audit_log")
    op.drop_table("web_audit_log")
    op.drop_index(op.f("ix_web_invitations_account_id"), table_name="web_invitations")
    op.drop_table("web_invitations")
    op.drop_table("web_settings")
