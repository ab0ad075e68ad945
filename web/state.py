"""The dashboard's collaborators, built once per app: what ``create_dashboard`` was given
(settings, database, billing, Redis, catalog, scoring's read API) plus the dashboard's own
services. Without a scoreboard, one is made from the database, Redis and catalog (no chain, no
live gateway stats).

A collaborator may be given as ``Late(factory)`` when the app that mounts the dashboard only
makes it in its lifespan (a mounted app gets no lifespan events of its own): the factory is
called on the first request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

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

T = TypeVar("T")


class Late(Generic[T]):
    """A collaborator made after ``create_dashboard`` (called on the first request)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory

    def get(self) -> T:
        return self._factory()


def resolve(value: T | Late[T]) -> T:
    return value.get() if isinstance(value, Late) else value


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
        db: Database | Late[Database],
        billing: Billing | Late[Billing],
        redis: Redis | Late[Redis | None] | None,
        catalog: Catalog | Late[Catalog],
        scoreboard: ScoreboardReader | Late[ScoreboardReader] | None,
        mount_path: str,
        api_base_url: str,
    ) -> None:
        self._settings = settings
        self._sources = (db, billing, redis, catalog)
        self._scoreboard = scoreboard
        self.mount_path = mount_path
        self._api_base_url = api_base_url
        self._dashboard: Dashboard | None = None

    def get(self) -> Dashboard:
        if self._dashboard is None:
            self._dashboard = self._build()
        return self._dashboard

    def _build(self) -> Dashboard:
        db_source, billing_source, redis_source, catalog_source = self._sources
        db = resolve(db_source)
        redis = resolve(redis_source)
        catalog = resolve(catalog_source)
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
            billing=resolve(billing_source),
            redis=redis,
            catalog=catalog,
            scoreboard=(
                resolve(self._scoreboard)
                if self._scoreboard is not None
                else ScoreboardReader.from_settings(settings, db=db, redis=redis, catalog=catalog)
            ),
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
