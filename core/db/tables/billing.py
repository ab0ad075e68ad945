"""Billing tables: accounts, API keys, the credit ledger, holds, usage, prices, Stripe, operators.

Invariants the billing service keeps (and ``sn19 ledger verify`` proves):

- ``accounts.balance`` is a cache of ``SUM(ledger_entries.amount)`` for the account, updated in
  the same transaction as every ledger insert. Holds debit it with a conditional
  ``UPDATE ... WHERE balance >= :amount`` so concurrent holds can never overdraw.
- ``ledger_entries`` is append-only (the migration installs triggers that reject UPDATE and
  DELETE on both backends). Amounts are signed integer micro-credits.
- Every hold is closed at most once: ``holds.status`` moves from ``open`` to ``settled``,
  ``released`` or ``expired`` with a guarded update. A closed hold has exactly one ``release``
  entry of ``+amount`` and, when settled, one ``settle`` entry of ``-cost``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigId, utcnow

LEDGER_KINDS = ("topup", "hold", "settle", "release", "refund", "grant", "adjustment")
HOLD_STATUSES = ("open", "settled", "released", "expired")
ACCOUNT_STATUSES = ("active", "suspended")
OPERATOR_ROLES = ("admin", "support", "customer")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Cached SUM(ledger_entries.amount); see the module docstring.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Display only: the first characters and the last four of the secret (its checksum part).
    prefix: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    # HMAC-SHA256(billing.key_hash_secret, secret), hex. The secret itself is never stored.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # None: every model; otherwise the task ids this key may call.
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    # None: unlimited.
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    daily_spend_cap: Mapped[int | None] = mapped_column(BigInteger)
    monthly_spend_cap: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column()


class KeySpend(Base):
    """Spend (settled costs + open holds) per key per UTC day (``d2026-11-25``) and month
    (``m2026-11``); kept only for keys with a spend cap, checked in the hold transaction."""

    __tablename__ = "api_key_spend"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(12), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    # Signed micro-credits: positive credits the account, negative debits it.
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("holds.id"), index=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # Who caused it ("key:12", "operator:alice", "stripe", "sweeper") and why.
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500), default="")
    # An outside reference: request id, Stripe event id.
    reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint(_in("status", HOLD_STATUSES), name="status"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        Index("ix_holds_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    task: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # The prices the hold was computed with; settle charges at the same prices.
    price_input: Mapped[int] = mapped_column(BigInteger)
    price_output: Mapped[int] = mapped_column(BigInteger)
    price_step: Mapped[int] = mapped_column(BigInteger)
    # The spend-cap periods the hold was counted in (None: the key had no such cap).
    spend_day: Mapped[str | None] = mapped_column(String(12))
    spend_month: Mapped[str | None] = mapped_column(String(12))
    cost: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_account_id_created_at", "account_id", "created_at"),
        Index("ix_usage_records_key_id_created_at", "key_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # One usage record per hold, whatever closed it.
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("holds.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    task: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    images: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    miner_hotkey: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    # ok | error | client_disconnected | ... | expired (closed by the sweeper)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageDaily(Base):
    """Per UTC day, account, key and task: updated in the settle transaction (an upsert)."""

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_account_id_day", "account_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    task: Mapped[str] = mapped_column(String(128), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    images: Mapped[int] = mapped_column(BigInteger, default=0)
    steps: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)


class Price(Base):
    """A price override for one task (micro-credits); tasks without a row use the catalog's."""

    __tablename__ = "prices"

    task: Mapped[str] = mapped_column(String(128), primary_key=True)
    input_per_million: Mapped[int] = mapped_column(BigInteger, default=0)
    output_per_million: Mapped[int] = mapped_column(BigInteger, default=0)
    per_step: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StripeEvent(Base):
    """Every verified webhook event, once (the primary key is Stripe's event id)."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    object_id: Mapped[str | None] = mapped_column(String(255))
    payment_intent: Mapped[str | None] = mapped_column(String(255), index=True)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    # processed | ignored
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="")
    # Signed micro-credits this event moved (0 when it moved none).
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripePayment(Base):
    """A paid Checkout Session: what was bought, and what was refunded so far."""

    __tablename__ = "stripe_payments"

    checkout_session_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    payment_intent: Mapped[str | None] = mapped_column(String(255), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    credits: Mapped[int] = mapped_column(BigInteger)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Operator(Base):
    """A dashboard user: validator staff (admin, support) or a customer tied to an account."""

    __tablename__ = "operators"
    __table_args__ = (CheckConstraint(_in("role", OPERATOR_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # argon2id hash; None until a password is set.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


__all__ = [
    "Account",
    "ApiKey",
    "Hold",
    "KeySpend",
    "LedgerEntry",
    "Operator",
    "Price",
    "StripeEvent",
    "StripePayment",
    "UsageDaily",
    "UsageRecord",
]
