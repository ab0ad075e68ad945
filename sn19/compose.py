"""The gateway process's composition: the API (``gateway.create_app``) and, with billing on, the
dashboard (``web.create_dashboard``) mounted beside it at ``/dashboard``.

``gateway`` and ``web`` never import each other; this is the one place that puts them in one
app. The dashboard uses the gateway's own database, billing, Redis, catalog and live miner stats,
which exist only once the gateway's lifespan has run: each is handed over as ``Late(factory)``.
"""

from __future__ import annotations

from typing import TypeVar

from litestar import Litestar

from billing import Billing
from core.db.engine import Database
from core.settings import Settings
from gateway import create_app
from gateway.state import Gateway
from scoring import ScoreboardReader
from web import Late, create_dashboard, mount_dashboard

T = TypeVar("T")


def gateway_app(settings: Settings) -> Litestar:
    """The app ``sn19 gateway`` serves."""
    if not settings.billing.enabled:
        # The dashboard sells credits and manages keys: without billing it has nothing to run.
        return create_app(settings)
    app: Litestar | None = None

    def running() -> Gateway:
        if app is None or getattr(app.state, "gateway", None) is None:
            raise RuntimeError("the gateway is not started (lifespan not run)")
        gateway: Gateway = app.state.gateway
        return gateway

    def db() -> Database:
        return _required(running().db, "database")

    def billing() -> Billing:
        return _required(running().billing_system, "billing")

    def scoreboard() -> ScoreboardReader:
        gateway = running()
        return ScoreboardReader.from_settings(
            settings,
            db=db(),
            redis=gateway.redis,
            catalog=gateway.catalog,
            live=gateway.stats,
        )

    dashboard = create_dashboard(
        settings,
        db=Late(db),
        billing=Late(billing),
        redis=Late(lambda: running().redis),
        catalog=Late(lambda: running().catalog),
        scoreboard=Late(scoreboard),
    )
    app = create_app(settings, extra_handlers=[mount_dashboard(dashboard)])
    return app


def _required(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"the gateway runs without its {what}")
    return value
