"""Server-side sessions: the cookie carries a random token, the table only its SHA-256.

A session ends ``session_idle_timeout_s`` after its last request, ``session_absolute_timeout_s``
after sign-in, when its user signs out (the row is deleted), or when the user is disabled or
changes password. Every sign-in creates a new token (the old session, if any, is deleted).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Operator
from core.db.tables.web import WebSession
from web.tokens import new_token, token_hash
from web.users import User, user_of

# last_seen_at is written at most this often per session (not on every page view).
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SignedIn:
    """The request's user and session. ``token`` is the cookie's value (kept in memory only,
    to derive the CSRF token)."""

    user: User
    session_id: int
    token: str
    expires_at: datetime


class SessionStore:
    def __init__(self, db: Database, *, idle_timeout_s: int, absolute_timeout_s: int) -> None:
        self._db = db
        self.idle = timedelta(seconds=idle_timeout_s)
        self.absolute = timedelta(seconds=absolute_timeout_s)

    async def create(self, user: User, *, ip: str, user_agent: str) -> SignedIn:
        token = new_token()
        now = utcnow()
        row = WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.absolute,
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
        async with self._db.transaction() as session:
            session.add(row)
            # Housekeeping, now and then: sessions past their absolute expiry.
            if random.random() < 0.05:
                await session.execute(delete(WebSession).where(WebSession.expires_at < now))
            await session.flush()
            return SignedIn(user, row.id, token, row.expires_at)

    async def resolve(self, token: str) -> SignedIn | None:
        """The live session of this cookie token, or None (unknown, expired, user disabled)."""
        if not token or len(token) > 200:
            return None
        now = utcnow()
        async with self._db.read() as session:
            found = (
                await session.execute(
                    select(WebSession, Operator)
                    .join(Operator, Operator.id == WebSession.user_id)
                    .where(WebSession.token_hash == token_hash(token))
                )
            ).one_or_none()
        if found is None:
            return None
        row, operator = found
        if operator.disabled or row.expires_at <= now or row.last_seen_at + self.idle <= now:
            await self.end(token)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            async with self._db.transaction() as session:
                await session.execute(
                    update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now)
                )
        return SignedIn(user_of(operator), row.id, token, row.expires_at)

    async def end(self, token: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(WebSession).where(WebSession.token_hash == token_hash(token))
            )

    async def end_all(self, user_id: int) -> None:
        async with self._db.transaction() as session:
            await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
