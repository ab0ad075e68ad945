"""Dashboard tables: server-side sessions, invitations, the audit log and site settings.

Dashboard users are rows of ``operators`` (``core/db/tables/billing.py``): staff (role ``admin``
or ``support``, no account) and customers (role ``customer``, exactly one account; an account
may have several). Their passwords are argon2id hashes.

- ``web_sessions``: one row per signed-in browser. Only ``SHA-256(token)`` is stored; the token
  lives in the user's HttpOnly cookie. Idle expiry uses ``last_seen_at``, absolute expiry
  ``expires_at``; signing out deletes the row.
- ``web_invitations``: a link (token hashed the same way) that lets one e-mail address create a
  user with a given role (and account), until it expires or is used.
- ``web_audit_log``: append-only record of every change made through the dashboard (who, what,
  which account, from where).
- ``web_settings``: site switches operators change at run time (``signup_enabled``,
  ``public_scoreboard``).
- ``web_one_time_views``: what a form that creates something shows once after its redirect (a
  new key's secret, an invitation link), sealed: the row holds the text XOR a random pad and the
  pad lives only in the browser's cookie for that view, so neither alone reveals it. Reading
  the view deletes the row (``web.once``).

The dashboard's keyset pages of one account's usage records need ``(account_id, id)`` on
``usage_records``; that index is declared here (with the dashboard's migration) so the models
and the migrations stay equal.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigId, utcnow
from core.db.tables.billing import OPERATOR_ROLES, UsageRecord


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # SHA-256 (hex) of the cookie's token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Absolute expiry: the session ends then, however active it is.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class Invitation(Base):
    __tablename__ = "web_invitations"
    __table_args__ = (CheckConstraint(_in("role", OPERATOR_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # Customers join this account; None for staff.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    __tablename__ = "web_audit_log"
    __table_args__ = (Index("ix_web_audit_log_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    # "operator:alice@example.com", "customer:bob@example.com", "anonymous".
    actor: Mapped[str] = mapped_column(String(200))
    # Dotted verb: "account.create", "key.rotate", "credits.grant", "auth.login", ...
    action: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # What was acted on ("key:12", "task:sn19-tiny-chat") and the details (no secrets).
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(String(1000), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")


class SiteSetting(Base):
    __tablename__ = "web_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OneTimeView(Base):
    __tablename__ = "web_one_time_views"

    # The random id in the view's URL.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Only the browser session that created it may read it.
    session_id: Mapped[int] = mapped_column(ForeignKey("web_sessions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # The text XOR the pad (the pad is in the browser's cookie only).
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # What the page says about it (no secret): the key or the invitation, where to go back.
    subject_id: Mapped[int] = mapped_column(default=0)
    back: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# Keyset pages of one account's usage records (newest first): WHERE account_id = ? AND id < ?
# ORDER BY id DESC. Without it PostgreSQL sorts every record of the account.
USAGE_RECORDS_ACCOUNT_ID_ID = Index(
    "ix_usage_records_account_id_id", UsageRecord.account_id, UsageRecord.id
)

__all__ = [
    "USAGE_RECORDS_ACCOUNT_ID_ID",
    "AuditEntry",
    "Invitation",
    "OneTimeView",
    "SiteSetting",
    "WebSession",
]
