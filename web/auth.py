"""Who is asking: the session middleware, the role guards and the cookies.

``SessionMiddleware`` resolves the session cookie once per request (static files excepted) and
leaves a ``SignedIn`` (or None) in the scope's state; it also puts the security headers on every
response. Every route declares its role with one of the guards (``customers_only``,
``staff_only``, ``admins_only``; public pages have none), and customers' queries always use
``user.account_id`` from the session, never an id from the URL.

Roles: ``admin`` (staff, everything), ``support`` (staff, read-only), ``customer`` (one
account's keys, usage and billing).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from web.sessions import SignedIn
from web.state import Dashboard, DashboardHolder

SESSION_COOKIE = "sn19_session"
# Pre-sign-in cookie: binds the CSRF token of the sign-in, sign-up and invitation forms.
PRE_COOKIE = "sn19_pre"
_AUTH = "sn19_web_auth"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class LoginRequired(NotAuthorizedException):
    """No live session: pages redirect to the sign-in form, form posts answer 401."""


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn | None:
    state: dict[str, Any] = connection.scope.get("state", {})
    value = state.get(_AUTH)
    return value if isinstance(value, SignedIn) else None


def require(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn:
    found = signed_in(connection)
    if found is None:
        raise LoginRequired("Sign in to continue.")
    return found


def customers_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not require(connection).user.is_customer:
        raise PermissionDeniedException("This page is for customer accounts.")


def staff_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not require(connection).user.is_staff:
        raise PermissionDeniedException("This page is for the validator's operators.")


def admins_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not require(connection).user.is_admin:
        raise PermissionDeniedException("Only administrators can make this change.")


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address: the peer's, or what a trusted proxy forwarded
    (``ProxyHeadersMiddleware`` in ``web.app`` rewrote the scope)."""
    client = connection.scope.get("client")
    return str(client[0])[:64] if client else ""


def secure_cookies(dash: Dashboard, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """``auto``: when the original request was https (the scope's scheme, which a trusted
    proxy's X-Forwarded-Proto sets)."""
    mode = dash.settings.web.secure_cookies
    if mode == "auto":
        return connection.scope.get("scheme") == "https"
    return mode == "always"


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0:0:0:0:0:0:0:1"})


def is_local_host(host: str) -> bool:
    """A loopback name or address (``127.x`` included)."""
    name = host.strip().lower()
    if name.startswith("[") and "]" in name:
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in LOCAL_HOSTS or name.startswith("127.") or name.endswith(".localhost")


def plain_http_exposed(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """This request reached the dashboard over plain http at a non-local address: passwords
    and session cookies cross the network unencrypted."""
    if connection.scope.get("scheme") != "http":
        return False
    return not is_local_host(connection.headers.get("host", ""))


def cookie(
    dash: Dashboard,
    connection: ASGIConnection[Any, Any, Any, Any],
    key: str,
    value: str,
    *,
    max_age: int | None,
    path: str = "",
) -> Cookie:
    """HttpOnly, SameSite=Lax, Path=<mount> (or ``path``), Secure per ``web.secure_cookies``."""
    return Cookie(
        key=key,
        value=value,
        path=path or dash.mount_path or "/",
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(dash, connection),
    )


def expired_cookie(
    dash: Dashboard, connection: ASGIConnection[Any, Any, Any, Any], key: str, path: str = ""
) -> Cookie:
    return cookie(dash, connection, key, "", max_age=0, path=path)


class SessionMiddleware:
    """Resolves the session cookie into the scope; adds security and caching headers."""

    def __init__(self, app: ASGIApp, holder: DashboardHolder) -> None:
        self.app = app
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        dash = self.holder.get()
        static = scope["path"].startswith("/static/")
        clear: Cookie | None = None
        if not static:
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
            token = connection.cookies.get(SESSION_COOKIE)
            found = await dash.sessions.resolve(token) if token else None
            scope.setdefault("state", {})[_AUTH] = found
            if token and found is None:
                clear = expired_cookie(dash, connection, SESSION_COOKIE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers["cache-control"] = "no-store"
                if clear is not None:
                    headers.add("set-cookie", clear.to_header(header=""))
            await send(message)

        await self.app(scope, receive, send_with_headers)
