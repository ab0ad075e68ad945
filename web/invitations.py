"""Invitations: an operator creates a link for one e-mail address and a role (customers: and an
account); whoever opens it before it expires sets a password and becomes that user. Only the
SHA-256 of the link's token is stored; the link is shown to the operator once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Account
from core.db.tables.web import Invitation
from web.passwords import password_problem
from web.tokens import new_token, token_hash
from web.users import ROLES, User, UserError, UserService, normalize_email


@dataclass(frozen=True)
class InvitationInfo:
    id: int
    email: str
    role: str
    account_id: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    def pending(self, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


def _info(row: Invitation) -> InvitationInfo:
    return InvitationInfo(
        row.id,
        row.email,
        row.role,
        row.account_id,
        row.created_by,
        row.created_at,
        row.expires_at,
        row.accepted_at,
        row.revoked_at,
    )


class InvitationService:
    def __init__(self, db: Database, users: UserService, *, ttl_s: int) -> None:
        self._db = db
        self._users = users
        self._ttl = timedelta(seconds=ttl_s)

    async def create(
        self, email: str, *, role: str, account_id: int | None, created_by: str
    ) -> tuple[str, InvitationInfo]:
        """(the token for the link, the invitation)."""
        address = normalize_email(email)
        if role not in ROLES:
            raise UserError(f"Unknown role {role!r}.")
        if (role == "customer") != (account_id is not None):
            raise UserError("Customers are invited to one account; staff to none.")
        if await self._users.by_email(address) is not None:
            raise UserError(f"A user with the e-mail {address} already exists.")
        token = new_token()
        now = utcnow()
        row = Invitation(
            token_hash=token_hash(token),
            email=address,
            role=role,
            account_id=account_id,
            created_by=created_by,
            created_at=now,
            expires_at=now + self._ttl,
        )
        async with self._db.transaction() as session:
            if account_id is not None and await session.get(Account, account_id) is None:
                raise UserError(f"There is no account {account_id}.")
            session.add(row)
            await session.flush()
            return token, _info(row)

    async def find(self, token: str) -> InvitationInfo | None:
        """The invitation of a link if it can still be accepted."""
        if not token or len(token) > 200:
            return None
        async with self._db.read() as session:
            row = (
                await session.execute(
                    select(Invitation).where(Invitation.token_hash == token_hash(token))
                )
            ).scalar_one_or_none()
        if row is None or not _info(row).pending(utcnow()):
            return None
        return _info(row)

    async def accept(self, token: str, password: str, *, name: str = "") -> User:
        invitation = await self.find(token)
        if invitation is None:
            raise UserError("This invitation has expired or was already used.")
        if problem := password_problem(password):
            raise UserError(problem)
        async with self._db.transaction() as session:
            claimed = await session.execute(
                update(Invitation)
                .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
                .values(accepted_at=utcnow())
            )
            if not getattr(claimed, "rowcount", 0):
                raise UserError("This invitation has expired or was already used.")
        return await self._users.create(
            invitation.email,
            password,
            role=invitation.role,
            account_id=invitation.account_id,
            name=name,
        )

    async def revoke(self, invitation_id: int) -> bool:
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Invitation)
                .where(
                    Invitation.id == invitation_id,
                    Invitation.accepted_at.is_(None),
                    Invitation.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return bool(getattr(result, "rowcount", 0))

    async def pending(self, *, account_id: int | None = None) -> list[InvitationInfo]:
        now = utcnow()
        stmt = (
            select(Invitation)
            .where(
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.id.desc())
            .limit(200)
        )
        if account_id is not None:
            stmt = stmt.where(Invitation.account_id == account_id)
        async with self._db.read() as session:
            return [_info(row) for row in (await session.execute(stmt)).scalars()]
