"""Managing API keys: create (the secret is returned once), list, update, revoke, rotate.

Every change that can affect authentication (revoke, rotate, update, account suspension)
commits first, then tells every gateway replica to drop the key (``KeyInvalidator``: Redis
cache delete + pub/sub + a generation counter, see ``billing.keys.auth``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import BillingNotFound
from billing.keys.store import (
    KeyContext,
    KeyHasher,
    display,
    display_parts,
    generate_secret,
    is_well_formed,
)
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Account, ApiKey, Hold, KeySpend, UsageDaily

log = logging.getLogger(__name__)


class KeyInvalidator(Protocol):
    async def invalidate(self, secret_hashes: Sequence[str]) -> None: ...


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
"""Sentinel for ``KeyService.update``: leave the field as it is."""


@dataclass(frozen=True)
class KeyInfo:
    id: int
    account_id: int
    name: str
    display: str
    allowed_models: tuple[str, ...] | None
    rpm_limit: int | None
    tpm_limit: int | None
    daily_spend_cap: int | None
    monthly_spend_cap: int | None
    expires_at: datetime | None
    revoked: bool
    created_at: datetime
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class CreatedKey:
    """A new secret: show it to its owner once; it cannot be recovered."""

    secret: str
    key: KeyInfo


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        display=display(row.prefix, row.last4),
        allowed_models=tuple(row.allowed_models) if row.allowed_models is not None else None,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        daily_spend_cap=row.daily_spend_cap,
        monthly_spend_cap=row.monthly_spend_cap,
        expires_at=row.expires_at,
        revoked=row.revoked,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _limit(value: int | None) -> int | None:
    """0 or None: unlimited (stored as NULL)."""
    if value is not None and value < 0:
        raise ValueError("limits must not be negative")
    return value or None


def _cap(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise ValueError("spend caps must not be negative")
    return value


async def fetch_key_context(session: AsyncSession, secret_hash: str) -> KeyContext | None:
    """The auth record of a key by its hash (None when no key has that hash)."""
    row = (
        await session.execute(
            select(ApiKey, Account.status)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.secret_hash == secret_hash)
        )
    ).one_or_none()
    if row is None:
        return None
    key, status = row
    return KeyContext(
        key_id=key.id,
        account_id=key.account_id,
        name=key.name,
        prefix=display(key.prefix, key.last4),
        allowed_models=tuple(key.allowed_models) if key.allowed_models is not None else None,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        daily_spend_cap=key.daily_spend_cap,
        monthly_spend_cap=key.monthly_spend_cap,
        expires_at=key.expires_at.timestamp() if key.expires_at is not None else None,
        revoked=key.revoked,
        account_active=status == "active",
    )


class KeyService:
    def __init__(
        self,
        db: Database,
        hasher: KeyHasher,
        invalidator: KeyInvalidator | None = None,
        *,
        default_rpm: int = 0,
        default_tpm: int = 0,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._invalidator = invalidator
        self._default_rpm = default_rpm
        self._default_tpm = default_tpm

    async def _invalidate(self, hashes: Sequence[str]) -> None:
        if self._invalidator is not None and hashes:
            await self._invalidator.invalidate(hashes)

    async def create(
        self,
        account_id: int,
        name: str,
        *,
        allowed_models: Sequence[str] | None = None,
        rpm_limit: int | None = KEEP,
        tpm_limit: int | None = KEEP,
        daily_spend_cap: int | None = None,
        monthly_spend_cap: int | None = None,
        expires_at: datetime | None = None,
        actor: str = "",
        secret: str | None = None,
    ) -> CreatedKey:
        """A new key for the account; ``rpm_limit``/``tpm_limit`` default to the settings'.
        ``secret`` imports a given (well-formed) secret instead of generating one."""
        if secret is None:
            secret = generate_secret()
        elif not is_well_formed(secret):
            raise ValueError("not a well-formed sk-sn19- secret")
        prefix, last4 = display_parts(secret)
        now = utcnow()
        row = ApiKey(
            account_id=account_id,
            name=name,
            prefix=prefix,
            last4=last4,
            secret_hash=self._hasher.hash(secret),
            allowed_models=list(allowed_models) if allowed_models is not None else None,
            rpm_limit=_limit(self._default_rpm if rpm_limit is KEEP else rpm_limit),
            tpm_limit=_limit(self._default_tpm if tpm_limit is KEEP else tpm_limit),
            daily_spend_cap=_cap(daily_spend_cap),
            monthly_spend_cap=_cap(monthly_spend_cap),
            expires_at=expires_at,
            revoked=False,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            if await session.get(Account, account_id) is None:
                raise BillingNotFound(f"no account {account_id}")
            session.add(row)
            await session.flush()
            info = _info(row)
        # A negative cache entry for this hash (someone tried it before) should not outlive it;
        # best effort: such entries expire within auth_negative_ttl_s anyway.
        try:
            await self._invalidate([row.secret_hash])
        except RedisError as exc:
            log.warning(
                "key %s created; could not clear its negative cache entry (%s)", row.id, exc
            )
        return CreatedKey(secret=secret, key=info)

    async def list_keys(self, account_id: int | None = None) -> list[KeyInfo]:
        stmt = select(ApiKey).order_by(ApiKey.id)
        if account_id is not None:
            stmt = stmt.where(ApiKey.account_id == account_id)
        async with self._db.read() as session:
            return [_info(row) for row in (await session.execute(stmt)).scalars()]

    async def get(self, key_id: int) -> KeyInfo:
        async with self._db.read() as session:
            row = await session.get(ApiKey, key_id)
            if row is None:
                raise BillingNotFound(f"no API key {key_id}")
            return _info(row)

    async def _locked(self, session: AsyncSession, key_id: int) -> ApiKey:
        row = await session.get(ApiKey, key_id, with_for_update=True)
        if row is None:
            raise BillingNotFound(f"no API key {key_id}")
        return row

    async def update(
        self,
        key_id: int,
        *,
        name: str = KEEP,
        allowed_models: Sequence[str] | None = KEEP,
        rpm_limit: int | None = KEEP,
        tpm_limit: int | None = KEEP,
        daily_spend_cap: int | None = KEEP,
        monthly_spend_cap: int | None = KEEP,
        expires_at: datetime | None = KEEP,
    ) -> KeyInfo:
        """Change any of the fields (``KEEP`` leaves one as is; ``None`` clears a limit)."""
        async with self._db.transaction() as session:
            row = await self._locked(session, key_id)
            if name is not KEEP:
                row.name = name
            if allowed_models is not KEEP:
                row.allowed_models = list(allowed_models) if allowed_models is not None else None
            if rpm_limit is not KEEP:
                row.rpm_limit = _limit(rpm_limit)
            if tpm_limit is not KEEP:
                row.tpm_limit = _limit(tpm_limit)
            if expires_at is not KEEP:
                row.expires_at = expires_at
            if daily_spend_cap is not KEEP:
                if row.daily_spend_cap is None and daily_spend_cap is not None:
                    await _seed_spend(session, row, "day")
                row.daily_spend_cap = _cap(daily_spend_cap)
            if monthly_spend_cap is not KEEP:
                if row.monthly_spend_cap is None and monthly_spend_cap is not None:
                    await _seed_spend(session, row, "month")
                row.monthly_spend_cap = _cap(monthly_spend_cap)
            row.updated_at = utcnow()
            await session.flush()
            info, secret_hash = _info(row), row.secret_hash
        await self._invalidate([secret_hash])
        return info

    async def revoke(self, key_id: int) -> KeyInfo:
        async with self._db.transaction() as session:
            row = await self._locked(session, key_id)
            if not row.revoked:
                row.revoked = True
                row.revoked_at = utcnow()
                row.updated_at = row.revoked_at
            await session.flush()
            info, secret_hash = _info(row), row.secret_hash
        await self._invalidate([secret_hash])
        return info

    async def rotate(self, key_id: int) -> CreatedKey:
        """A new secret for the same key id (limits, usage history kept); the old secret stops
        working at once."""
        secret = generate_secret()
        prefix, last4 = display_parts(secret)
        async with self._db.transaction() as session:
            row = await self._locked(session, key_id)
            if row.revoked:
                raise ValueError(f"API key {key_id} is revoked; create a new one")
            old_hash = row.secret_hash
            row.secret_hash = self._hasher.hash(secret)
            row.prefix, row.last4 = prefix, last4
            row.rotated_at = row.updated_at = utcnow()
            await session.flush()
            info, new_hash = _info(row), row.secret_hash
        await self._invalidate([old_hash, new_hash])
        return CreatedKey(secret=secret, key=info)


async def _seed_spend(session: AsyncSession, key: ApiKey, unit: str) -> None:
    """A cap set on a key that had none: start its counter at what the key already spent in
    the current period (settled costs plus open holds, which is conservative)."""
    now = utcnow()
    if unit == "day":
        period, start = f"d{now:%Y-%m-%d}", now.date()
    else:
        period, start = f"m{now:%Y-%m}", now.date().replace(day=1)
    settled = (
        await session.execute(
            select(func.coalesce(func.sum(UsageDaily.cost), 0)).where(
                UsageDaily.key_id == key.id, UsageDaily.day >= start
            )
        )
    ).scalar_one()
    held = (
        await session.execute(
            select(func.coalesce(func.sum(Hold.amount), 0)).where(
                Hold.key_id == key.id, Hold.status == "open"
            )
        )
    ).scalar_one()
    existing = await session.get(KeySpend, (key.id, period), with_for_update=True)
    if existing is None:
        session.add(KeySpend(key_id=key.id, period=period, amount=int(settled) + int(held)))
    else:
        existing.amount = int(settled) + int(held)
