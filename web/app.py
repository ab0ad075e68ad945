"""The dashboard's composition root: ``create_dashboard(...)`` -> a Litestar app of its own
(templates, static files, session middleware, CSRF check, HTML error pages), meant to be
mounted by the gateway under ``/dashboard``::

    dashboard = create_dashboard(
        settings, db=db, billing=billing, redis=redis, catalog=catalog, scoreboard=reader
    )
    app = Litestar(route_handlers=[..., mount_dashboard(dashboard)])

A mounted app gets no lifespan events, so the dashboard owns no resources: it uses the
mounting process's database, billing, Redis, catalog and scoring read API
(``ScoreboardReader``), opened before either app is built (``sn19.compose``).

Every form post must carry the page's CSRF token (``csrf_token``), derived from the session
cookie (or, before sign-in, from a pre-sign-in cookie); posts from another site
(``Sec-Fetch-Site: cross-site``) are refused too.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.handlers.asgi_handlers import ASGIRouteHandler, asgi
from litestar.middleware.base import DefineMiddleware
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from billing import Billing
from core.db.engine import Database
from core.settings import Settings
from protocol.catalog import Catalog
from scoring import ScoreboardReader
from web.auth import PRE_COOKIE, SessionMiddleware, is_local_host, require, signed_in
from web.controllers import (
    admin,
    admin_keys,
    admin_miners,
    admin_scoring,
    admin_site,
    customer,
    customer_usage,
    once,
    public,
    scoreboard,
)
from web.errors import CsrfRejected, error_handler
from web.render import STATIC, template_engine
from web.sessions import SignedIn
from web.state import Dashboard, DashboardHolder
from web.tokens import csrf_matches

log = logging.getLogger(__name__)

MOUNT_PATH = "/dashboard"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Upper bound of a dashboard form post (the largest is a key's model allowlist).
MAX_FORM_BYTES = 64 * 1024

ROUTES = [
    public.root,
    public.login_form,
    public.login,
    public.logout,
    public.signup_form,
    public.signup,
    public.invitation_form,
    public.accept_invitation,
    customer.overview,
    customer.keys,
    customer.create_key,
    customer.key_detail,
    customer.update_key,
    customer.rotate_key,
    customer.revoke_key,
    once.once_view,
    customer_usage.usage,
    customer_usage.requests,
    customer_usage.request_detail,
    customer_usage.billing,
    customer_usage.checkout,
    customer_usage.statement_export,
    customer_usage.docs,
    admin.admin_overview,
    admin.accounts,
    admin.create_account,
    admin.account_detail,
    admin.account_status,
    admin.statement_export,
    admin.grant,
    admin_keys.create_key,
    admin_keys.key_detail,
    admin_keys.update_key,
    admin_keys.rotate_key,
    admin_keys.revoke_key,
    admin_keys.invite_customer,
    admin_site.prices,
    admin_site.set_price,
    admin_site.reset_price,
    admin_site.users,
    admin_site.invite_staff,
    admin_site.set_user_state,
    admin_site.revoke_invitation,
    admin_site.audit,
    admin_site.settings_page,
    admin_site.save_settings,
    admin_miners.miners,
    admin_miners.miner_detail,
    admin_scoring.checker,
    admin_scoring.chain,
    scoreboard.scoreboard,
    scoreboard.scoreboard_miner,
]


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    """Every unsafe request needs the token of the form the dashboard rendered for this
    browser (bound to its session cookie, or to its pre-sign-in cookie)."""
    if request.method in _SAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRejected("Cross-site form posts are refused.")
    form = await request.form()
    sent = form.get("csrf_token")
    found = signed_in(request)
    cookie_token = found.token if found is not None else request.cookies.get(PRE_COOKIE)
    if not csrf_matches(cookie_token, sent if isinstance(sent, str) else None):
        raise CsrfRejected("The form's security token is missing or wrong.")


def proxy_headers(app: ASGIApp, trusted: list[str]) -> ASGIApp:
    """uvicorn's ``ProxyHeadersMiddleware`` (addresses, networks or ``*``; the client is the
    right-most untrusted X-Forwarded-For hop) in front of the dashboard, whatever serves it."""
    return cast("ASGIApp", ProxyHeadersMiddleware(cast("Any", app), trusted_hosts=trusted))


def warn_if_plain_http(settings: Settings, mount: str) -> None:
    """At start-up: the gateway listens on a non-local address and its public URL is not
    https, so sign-ins would cross the network in clear text (unless a TLS proxy is in front:
    then set ``gateway.public_url`` to its https address)."""
    gateway = settings.gateway
    if is_local_host(gateway.host) or gateway.public_url.startswith("https://"):
        return
    log.warning(
        "the dashboard (%s) is served over plain http on %s:%d: passwords and session cookies "
        "cross the network unencrypted. Serve it behind a TLS-terminating proxy (list it in "
        "web.trusted_proxies) and set gateway.public_url to its https:// address.",
        mount,
        gateway.host,
        gateway.port,
    )


def create_dashboard(
    settings: Settings,
    *,
    db: Database,
    billing: Billing,
    redis: Redis | None,
    catalog: Catalog,
    scoreboard: ScoreboardReader | None = None,
    base_url: str = "",
    mount_path: str = MOUNT_PATH,
) -> Litestar:
    """The dashboard app. ``scoreboard``: scoring's read API for the miners, checker and chain
    pages (default: one over ``db``, ``redis`` and ``catalog``, without a chain connection or
    the gateway's live miner stats). ``base_url``: the API base URL shown in quick-starts (default
    ``web.api_base_url``, else ``<gateway.public_url>/v1``, else the request's host + ``/v1``).
    ``mount_path``: where the mounting app serves it (links, redirects and cookie paths)."""
    mount = "/" + mount_path.strip("/") if mount_path.strip("/") else ""
    warn_if_plain_http(settings, mount or "/")
    holder = DashboardHolder(
        settings,
        db=db,
        billing=billing,
        redis=redis,
        catalog=catalog,
        scoreboard=scoreboard,
        mount_path=mount,
        api_base_url=base_url or settings.web.api_base_url,
    )

    def provide_dashboard() -> Dashboard:
        return holder.get()

    def provide_me(request: Request[Any, Any, Any]) -> SignedIn:
        return require(request)

    return Litestar(
        route_handlers=[
            *ROUTES,
            create_static_files_router(
                path="/static", directories=[STATIC], name="static", include_in_schema=False
            ),
        ],
        dependencies={
            "dash": Provide(provide_dashboard, sync_to_thread=False),
            "me": Provide(provide_me, sync_to_thread=False),
        },
        middleware=[
            # First: a trusted proxy's X-Forwarded-Proto/-For become the scope's scheme and
            # client, so everything after (cookies, limits, the audit log) sees the original.
            DefineMiddleware(proxy_headers, trusted=settings.web.trusted_proxies),
            DefineMiddleware(SessionMiddleware, holder=holder),
        ],
        before_request=check_csrf,
        template_config=TemplateConfig(instance=template_engine()),
        exception_handlers={Exception: error_handler(holder)},
        request_max_body_size=MAX_FORM_BYTES,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def mount_dashboard(dashboard: Litestar, path: str = MOUNT_PATH) -> ASGIRouteHandler:
    """A route handler serving ``dashboard`` under ``path`` in another Litestar app."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        await dashboard(scope, receive, send)

    return asgi(path, is_mount=True, copy_scope=True)(serve)
