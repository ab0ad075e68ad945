"""What the gateway process shares between the API and the dashboard, opened once.

``open_shared(settings)`` is an async context manager: the catalog, Redis (the embedded server
when ``redis.url`` is empty), the live miner stats (shared with the other replicas through Redis:
``core.miners.live``) and, with ``billing.enabled``, the database (checked to be at the
migrations' head) and billing running with its key listener and hold sweeper
(``billing.running_billing``). Everything is closed, each step bounded, when the block ends.

The process's composition root (``sn19.compose``) opens it and hands the same ``Shared`` to
``gateway.create_app`` and to the dashboard; ``create_app`` opens its own when given none (tests
and a gateway without a dashboard). Keyword arguments replace a part (tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from billing import Billing, KeyHasher, running_billing
from core.db.engine import Database
from core.miners import MinerStats
from core.miners.live import start_live_stats
from core.redis import EmbeddedRedis, create_redis
from core.settings import Settings
from core.shutdown import push_bounded
from protocol.catalog import Catalog, resolve_catalog


@dataclass(frozen=True)
class Shared:
    catalog: Catalog
    redis: Any
    live: MinerStats
    # Both None when billing is off.
    db: Database | None = None
    billing: Billing | None = None


def check_settings(settings: Settings) -> None:
    """Fail fast (``ConfigError``), before anything is opened, on settings that cannot work."""
    if settings.billing.enabled:
        KeyHasher.from_settings(settings)


async def _open_redis(settings: Settings, stack: AsyncExitStack) -> Any:
    url = settings.redis.url
    if not url:
        embedded = EmbeddedRedis(settings.data_path / "redis")
        url = await asyncio.to_thread(embedded.start)
        stack.callback(embedded.stop)
    client = create_redis(url, max_connections=settings.redis.max_connections)
    push_bounded(stack, "redis client", client.aclose)
    return client


@asynccontextmanager
async def open_shared(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    redis: Any | None = None,
    stats: MinerStats | None = None,
) -> AsyncIterator[Shared]:
    check_settings(settings)
    async with AsyncExitStack() as stack:
        the_catalog = catalog or resolve_catalog(settings.catalog)
        the_redis = redis if redis is not None else await _open_redis(settings, stack)
        live = stats or await start_live_stats(settings, the_redis, stack)
        db: Database | None = None
        billing: Billing | None = None
        if settings.billing.enabled:
            from core.db.migrate import require_head

            await require_head(settings.database_url)
            db = Database.from_url(settings.database_url, settings.database)
            push_bounded(stack, "billing database", db.dispose)
            billing = await stack.enter_async_context(
                running_billing(settings, the_catalog, db, the_redis)
            )
        yield Shared(catalog=the_catalog, redis=the_redis, live=live, db=db, billing=billing)
