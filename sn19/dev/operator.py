"""The dashboard operator of ``sn19 dev``: ``admin@sn19.dev`` with a fresh password each start
(printed with the dashboard's address), so a developer can sign in at once."""

from __future__ import annotations

import asyncio
import secrets

from core.db.engine import Database
from core.settings import Settings
from web import UserService

DEV_OPERATOR = "admin@sn19.dev"


def prepare_dev_operator(settings: Settings) -> tuple[str, str]:
    """Create the dev administrator (or reset its password); its e-mail and new password. The
    database must be migrated (the billing step before this one does it)."""
    password = secrets.token_urlsafe(12)

    async def main() -> None:
        db = Database.from_url(settings.database_url, settings.database)
        try:
            users = UserService(db)
            existing = await users.by_email(DEV_OPERATOR)
            if existing is None:
                await users.create(DEV_OPERATOR, password, role="admin", name="sn19 dev")
            else:
                await users.set_password(existing.id, password)
                if existing.disabled:
                    await users.set_disabled(existing.id, False)
        finally:
            await db.dispose()

    asyncio.run(main())
    return DEV_OPERATOR, password
