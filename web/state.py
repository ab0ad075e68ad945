"""The dashboard's collaborators, built once per app: what ``create_dashboard`` was given
(settings, database, billing, Redis, catalog, scoring's read API) plus the dashboard's own
services. Without a scoreboard, one is made from the database, Redis and catalog (no chain, no
live gateway stats). The services are built on the first request.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from billing import Billing
from core.db.engine import Database
from core.settings import Settings
from protocol.catalog import Catalog
from scoring import ScoreboardReader
from web.audit import AuditLog, SiteSettings
from web.invitations import InvitationService
from web.ratelimit import LoginLimiter, MemoryLoginLimiter, RedisLoginLimiter
from web.reports import Reports
from web.sessions import SessionStore
from web.users import UserService


@dataclass(frozen=True)
class Dashboard:
    settings: Settings
    db: Database
    billing: Billing
    redis: Redis | None
    catalog: Catalog
    # Scoring's read API (miners, checker, chain pages).
    scoreboard: ScoreboardReader
    # Where the dashboard is mounted ("/dashboard"): every link, redirect and cookie uses it.
    mount_path: str
    # The API base URL for quick-starts ("" : derived from the request).
    api_base_url: str
    users: UserService
    invitations: InvitationService
    sessions: SessionStore
    audit: AuditLog
    site: SiteSettings
    reports: Reports
    limiter: LoginLimiter

    def url(self, path: str = "/") -> str:
        """A dashboard path under the mount: ``url("/keys")`` -> ``/dashboard/keys``."""
        if path in ("", "/"):
            return self.mount_path + "/"
        return self.mount_path + (path if path.startswith("/") else f"/{path}")


class DashboardHolder:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database,
        billing: Billing,
        redis: Redis | None,
        catalog: Catalog,
        scoreboard: ScoreboardReader | None,
        mount_path: str,
        api_base_url: str,
    ) -> None:
        self._settings = settings
        self._db = db
        self._billing = billing
        self._redis = redis
        self._catalog = catalog
        self._scoreboard = scoreboard
        self.mount_path = mount_path
        self._api_base_url = api_base_url
        self._dashboard: Dashboard | None = None

    def get(self) -> Dashboard:
        if self._dashboard is None:
            self._dashboard = self._build()
        return self._dashboard

    def _build(self) -> Dashboard:
        db, redis, catalog = self._db, self._redis, self._catalog
        settings = self._settings
        web = settings.web
        users = UserService(db)
        limiter: LoginLimiter
        if redis is not None:
            limiter = RedisLoginLimiter(
                redis,
                settings.redis.key_prefix,
                max_failures=web.login_max_failures,
                window_s=web.login_window_s,
            )
        else:
            limiter = MemoryLoginLimiter(
                max_failures=web.login_max_failures, window_s=web.login_window_s
            )
        return Dashboard(
            settings=settings,
            db=db,
            billing=self._billing,
            redis=redis,
            catalog=catalog,
            scoreboard=self._scoreboard
            or ScoreboardReader.from_settings(settings, db=db, redis=redis, catalog=catalog),
            mount_path=self.mount_path,
            api_base_url=self._api_base_url,
            users=users,
            invitations=InvitationService(db, users, ttl_s=web.invitation_ttl_s),
            sessions=SessionStore(
                db,
                idle_timeout_s=web.session_idle_timeout_s,
                absolute_timeout_s=web.session_absolute_timeout_s,
            ),
            audit=AuditLog(db),
            site=SiteSettings(db, signup_default=web.signup_enabled),
            reports=Reports(db),
            limiter=limiter,
        )
