"""The audit log of dashboard actions (``web_audit_log``), and the site switches
(``web_settings``) operators change at run time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from core.db.base import utcnow
from core.db.dialect import insert_ignore
from core.db.engine import Database
from core.db.tables.web import AuditEntry, SiteSetting
from web.users import User

log = logging.getLogger(__name__)

PAGE = 50


@dataclass(frozen=True)
class AuditLine:
    id: int
    created_at: datetime
    actor: str
    action: str
    account_id: int | None
    target: str
    detail: str
    ip: str


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        user: User | None,
        action: str,
        *,
        account_id: int | None = None,
        target: str = "",
        detail: str = "",
        ip: str = "",
    ) -> None:
        row = AuditEntry(
            created_at=utcnow(),
            actor_id=user.id if user is not None else None,
            actor=user.actor if user is not None else "anonymous",
            action=action,
            account_id=account_id,
            target=target[:200],
            detail=detail[:1000],
            ip=ip[:64],
        )
        async with self._db.transaction() as session:
            session.add(row)
        log.info("audit: %s %s %s %s", row.actor, action, target, detail)

    async def page(
        self, *, account_id: int | None = None, before_id: int | None = None, limit: int = PAGE
    ) -> list[AuditLine]:
        """Newest first; the next page starts ``before_id`` = the last id shown."""
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if account_id is not None:
            stmt = stmt.where(AuditEntry.account_id == account_id)
        if before_id is not None:
            stmt = stmt.where(AuditEntry.id < before_id)
        async with self._db.read() as session:
            return [
                AuditLine(
                    r.id, r.created_at, r.actor, r.action, r.account_id, r.target, r.detail, r.ip
                )
                for r in (await session.execute(stmt)).scalars()
            ]


SIGNUP_ENABLED = "signup_enabled"
PUBLIC_SCOREBOARD = "public_scoreboard"


class SiteSettings:
    """Run-time switches; a key never set falls back to the settings file's default."""

    def __init__(self, db: Database, *, signup_default: bool) -> None:
        self._db = db
        self._signup_default = signup_default

    async def flag(self, key: str, default: bool) -> bool:
        async with self._db.read() as session:
            value = (
                await session.execute(select(SiteSetting.value).where(SiteSetting.key == key))
            ).scalar_one_or_none()
        return default if value is None else value == "true"

    async def set_flag(self, key: str, enabled: bool, *, actor: str) -> None:
        values = {
            "key": key,
            "value": "true" if enabled else "false",
            "updated_by": actor,
            "updated_at": utcnow(),
        }
        async with self._db.transaction() as session:
            row = await session.get(SiteSetting, key, with_for_update=True)
            if row is None:
                await session.execute(insert_ignore(self._db.dialect, SiteSetting, values, ["key"]))
            else:
                row.value, row.updated_by, row.updated_at = (str(values["value"]), actor, utcnow())

    async def signup_enabled(self) -> bool:
        return await self.flag(SIGNUP_ENABLED, self._signup_default)

    async def set_signup_enabled(self, enabled: bool, *, actor: str) -> None:
        await self.set_flag(SIGNUP_ENABLED, enabled, actor=actor)
