"""Dashboard users: rows of ``operators``. Staff have role ``admin`` (everything) or ``support``
(read-only); customers have role ``customer`` and belong to exactly one account.

The sign-in e-mail is the ``username`` column, stored lower-cased. Used by the dashboard and by
``sn19 operators``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Account, Operator
from core.db.tables.web import WebSession
from web.passwords import (
    hash_password_async,
    needs_rehash,
    password_problem,
    verify_password_async,
)

STAFF_ROLES = ("admin", "support")
ROLES = (*STAFF_ROLES, "customer")
EMAIL_MAX = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserError(ValueError):
    """A user cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    role: str
    account_id: int | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_customer(self) -> bool:
        return self.role == "customer" and self.account_id is not None

    @property
    def actor(self) -> str:
        """How ledger rows and the audit log name this user."""
        return f"{'operator' if self.is_staff else 'customer'}:{self.email}"

    @property
    def label(self) -> str:
        return self.name or self.email


def user_of(row: Operator) -> User:
    return User(
        id=row.id,
        email=row.username,
        name=row.display_name,
        role=row.role,
        account_id=row.account_id,
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def normalize_email(email: str) -> str:
    """Lower-cased and stripped; ``UserError`` when it is not an address."""
    value = email.strip().lower()
    if len(value) > EMAIL_MAX or not _EMAIL.match(value):
        raise UserError("Enter a valid e-mail address (at most 100 characters).")
    return value


class UserService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        email: str,
        password: str | None,
        *,
        role: str,
        account_id: int | None = None,
        name: str = "",
    ) -> User:
        """A new user. Customers need an existing account; staff must not have one."""
        address = normalize_email(email)
        if role not in ROLES:
            raise UserError(f"Unknown role {role!r}.")
        if (role == "customer") != (account_id is not None):
            raise UserError("Customers belong to one account; staff belong to none.")
        if password is not None and (problem := password_problem(password)):
            raise UserError(problem)
        hashed = await hash_password_async(password) if password is not None else None
        async with self._db.transaction() as session:
            if account_id is not None and await session.get(Account, account_id) is None:
                raise UserError(f"There is no account {account_id}.")
            taken = await session.execute(select(Operator.id).where(Operator.username == address))
            if taken.first() is not None:
                raise UserError(f"A user with the e-mail {address} already exists.")
            row = Operator(
                username=address,
                display_name=name.strip()[:200],
                password_hash=hashed,
                role=role,
                account_id=account_id,
                disabled=False,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            return user_of(row)

    async def authenticate(self, email: str, password: str) -> User | None:
        """The user when the password is right and the user is enabled; else None (one
        argon2 verification either way)."""
        try:
            address = normalize_email(email)
        except UserError:
            address = ""
        async with self._db.read() as session:
            row = (
                await session.execute(select(Operator).where(Operator.username == address))
            ).scalar_one_or_none()
        stored = row.password_hash if row is not None else None
        if not await verify_password_async(stored, password) or row is None or row.disabled:
            return None
        rehashed = (
            await hash_password_async(password)
            if stored is not None and needs_rehash(stored)
            else None
        )
        async with self._db.transaction() as session:
            fresh = await session.get(Operator, row.id, with_for_update=True)
            assert fresh is not None
            fresh.last_login_at = utcnow()
            if rehashed is not None:
                fresh.password_hash = rehashed
            await session.flush()
            return user_of(fresh)

    async def get(self, user_id: int) -> User | None:
        async with self._db.read() as session:
            row = await session.get(Operator, user_id)
            return user_of(row) if row is not None else None

    async def by_email(self, email: str) -> User | None:
        async with self._db.read() as session:
            row = (
                await session.execute(
                    select(Operator).where(Operator.username == email.strip().lower())
                )
            ).scalar_one_or_none()
            return user_of(row) if row is not None else None

    async def staff(self) -> list[User]:
        stmt = select(Operator).where(Operator.role.in_(STAFF_ROLES)).order_by(Operator.id)
        async with self._db.read() as session:
            return [user_of(row) for row in (await session.execute(stmt)).scalars()]

    async def of_account(self, account_id: int) -> list[User]:
        stmt = select(Operator).where(Operator.account_id == account_id).order_by(Operator.id)
        async with self._db.read() as session:
            return [user_of(row) for row in (await session.execute(stmt)).scalars()]

    async def count_admins(self) -> int:
        stmt = select(func.count()).where(Operator.role == "admin", Operator.disabled.is_(False))
        async with self._db.read() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        """Disabling also ends every session of the user at once."""
        async with self._db.transaction() as session:
            row = await session.get(Operator, user_id, with_for_update=True)
            if row is None:
                raise UserError(f"There is no user {user_id}.")
            row.disabled = disabled
            if disabled:
                await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
            await session.flush()
            return user_of(row)

    async def set_password(self, user_id: int, password: str) -> None:
        """A new password; every existing session of the user ends."""
        if problem := password_problem(password):
            raise UserError(problem)
        hashed = await hash_password_async(password)
        async with self._db.transaction() as session:
            row = await session.get(Operator, user_id, with_for_update=True)
            if row is None:
                raise UserError(f"There is no user {user_id}.")
            row.password_hash = hashed
            await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
