"""Error pages: every failure is an HTML page that says what happened and what to do next.

One handler for everything, mapping exceptions to (status, title, what-to-do):
``LoginRequired`` sends a page request to the sign-in form (and back afterwards); 403, 404,
CSRF failures, 429 and unexpected errors render ``error.html``. Details of unexpected errors go
to the log, never to the page.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.response import Redirect

from core.errors import AppError
from web.auth import LoginRequired
from web.render import page
from web.state import DashboardHolder

log = logging.getLogger(__name__)


class CsrfRejected(PermissionDeniedException):
    """A form post without the page's token (or from another site)."""


class TooManyAttempts(HTTPException):
    status_code = 429


_ADVICE = {
    400: ("The request was not valid", "Go back, check the form and try again."),
    401: ("Please sign in", "Your session has ended. Sign in again to continue."),
    403: (
        "You don't have access to this page",
        "Go back to your overview, or sign in with an account that has access.",
    ),
    404: (
        "Page not found",
        "The page or item does not exist, or it is not yours. "
        "Check the address or go back to your overview.",
    ),
    405: ("That action is not available here", "Go back to the page you came from."),
    429: ("Too many attempts", "Wait a few minutes, then try again."),
    503: (
        "Temporarily unavailable",
        "A service the dashboard needs is not available. Try again in a minute.",
    ),
}
_BROKEN = (
    "Something went wrong",
    "The error was logged. Try again; if it keeps happening, tell the validator's operators.",
)
_GENERIC = frozenset(
    {"Not Found", "Forbidden", "Unauthorized", "Method Not Allowed", "Bad Request"}
)
_CSRF_ADVICE = (
    "This form has expired",
    "The page was open too long or came from somewhere else. Reload the page and submit it again.",
)


def _full_path(request: Request[Any, Any, Any]) -> str:
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def error_handler(holder: DashboardHolder) -> Any:
    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        dash = holder.get()
        if isinstance(exc, LoginRequired) and request.method in ("GET", "HEAD"):
            return Redirect(
                path=f"{dash.url('/login')}?next={quote(_full_path(request), safe='/')}",
                status_code=303,
            )
        status = exc.status_code if isinstance(exc, (HTTPException, AppError)) else 500
        if isinstance(exc, CsrfRejected):
            title, advice = _CSRF_ADVICE
        elif status >= 500 and status != 503:
            log.exception("dashboard: %s %s failed", request.method, request.url.path, exc_info=exc)
            title, advice = _BROKEN
        else:
            title, advice = _ADVICE.get(status, ("Something went wrong", "Go back and try again."))
        detail = ""
        if isinstance(exc, HTTPException) and status < 500 and not isinstance(exc, CsrfRejected):
            detail = str(exc.detail or "")
        elif isinstance(exc, AppError) and status < 500:
            detail = exc.message
        if detail in _GENERIC:
            detail = ""
        headers = dict(exc.headers or {}) if isinstance(exc, TooManyAttempts) else {}
        response = page(
            request,
            dash,
            "error.html",
            status=status,
            title=title,
            error_title=title,
            advice=advice,
            detail=detail if detail != title else "",
            status_code=status,
        )
        response.headers.update(headers)
        return response

    return handle
