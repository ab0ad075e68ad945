"""What ``sn19 dev`` needs from billing: a migrated database, a funded dev account, and a key.

``prepare_dev_billing(settings)`` is synchronous (a ``sn19 dev`` preparation step): it applies
the migrations, creates (or reuses) the account ``dev``, tops it up to ``credits`` credits and
returns the secret of a key on it. Pass ``secret`` (made with ``billing.keys.generate_secret``)
to register a known key instead; preparing again with the same secret reuses that key.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from billing.components import Billing, open_billing
from billing.money import MICRO
from core.db.tables.billing import ApiKey
from core.settings import Settings

DEV_ACCOUNT = "dev"


async def create_dev_key(
    billing: Billing,
    *,
    credits: int = 1_000,
    account_name: str = DEV_ACCOUNT,
    secret: str | None = None,
) -> str:
    account = await billing.accounts.find(account_name)
    if account is None:
        account = await billing.accounts.create(account_name)
    missing = credits * MICRO - account.balance
    if missing > 0:
        await billing.accounts.grant(account.id, missing, actor="sn19 dev", reason="dev credits")
    if secret is not None:
        async with billing.db.read() as session:
            existing = (
                await session.execute(
                    select(ApiKey.id, ApiKey.revoked).where(
                        ApiKey.secret_hash == billing.hasher.hash(secret)
                    )
                )
            ).one_or_none()
        if existing is not None and not existing.revoked:
            return secret
    created = await billing.keys.create(account.id, "sn19 dev", actor="sn19 dev", secret=secret)
    return created.secret


def prepare_dev_billing(
    settings: Settings, *, credits: int = 1_000, secret: str | None = None
) -> str:
    """Migrate the database, fund the dev account, return the dev key's secret."""
    from core.db.migrate import upgrade

    upgrade(settings.database_url)

    async def main() -> str:
        async with open_billing(settings, use_redis=False) as billing:
            return await create_dev_key(billing, credits=credits, secret=secret)

    return asyncio.run(main())
