"""The gateway process's composition root: what the API and the dashboard share is opened once
(``gateway.resources.open_shared``: catalog, Redis, live miner stats, and with billing on the
database and billing), then both apps are built over it and the dashboard is mounted beside
the API at ``/dashboard``.

``gateway`` and ``web`` never import each other; this is the one place that puts them in one
app. Without billing there is no dashboard (it sells credits and manages keys).

    async with gateway_app(settings) as app:   # what `sn19 gateway` serves
        await gateway.server.serve(app, settings)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.types import ControllerRouterHandler

from core.settings import Settings
from gateway import create_app
from gateway.resources import open_shared
from scoring import ScoreboardReader
from web import create_dashboard, mount_dashboard


@asynccontextmanager
async def gateway_app(settings: Settings) -> AsyncIterator[Litestar]:
    async with open_shared(settings) as shared:
        handlers: list[ControllerRouterHandler] = []
        if shared.billing is not None and shared.db is not None:
            scoreboard = ScoreboardReader.from_settings(
                settings,
                db=shared.db,
                redis=shared.redis,
                catalog=shared.catalog,
                live=shared.live,
            )
            dashboard = create_dashboard(
                settings,
                db=shared.db,
                billing=shared.billing,
                redis=shared.redis,
                catalog=shared.catalog,
                scoreboard=scoreboard,
            )
            handlers.append(mount_dashboard(dashboard))
        yield create_app(settings, shared=shared, extra_handlers=handlers)
