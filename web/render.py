"""Pages: the Jinja environment (autoescaped), the filters, the navigation and ``page()``, which
renders a template with what every page needs (the user, the CSRF token, links under the mount).

Links are built with ``url("/keys")`` in templates (``Dashboard.url`` in code), never as
absolute strings, so the dashboard works under whatever path it is mounted at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template

from billing import MICRO, format_credits
from web.auth import PRE_COOKIE, cookie, signed_in
from web.charts import Axis, meter
from web.state import Dashboard
from web.tokens import csrf_token, new_token

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
_CSRF = "sn19_web_csrf"


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    path: str


CUSTOMER_NAV = (
    NavItem("overview", "Overview", "/overview"),
    NavItem("keys", "API keys", "/keys"),
    NavItem("usage", "Usage", "/usage"),
    NavItem("billing", "Billing", "/billing"),
    NavItem("docs", "Prices & quick start", "/docs"),
)
STAFF_NAV = (
    NavItem("admin", "Overview", "/admin"),
    NavItem("accounts", "Accounts", "/admin/accounts"),
    NavItem("prices", "Prices", "/admin/prices"),
    NavItem("users", "Users", "/admin/users"),
    NavItem("audit", "Audit log", "/admin/audit"),
    NavItem("miners", "Miners", "/admin/miners"),
    NavItem("checker", "Checker", "/admin/checker"),
    NavItem("chain", "Chain", "/admin/chain"),
    NavItem("settings", "Settings", "/admin/settings"),
)

# The public pages (no sign-in): the miner scoreboard, and the way in.
PUBLIC_NAV = (
    NavItem("scoreboard", "Miner scoreboard", "/scoreboard"),
    NavItem("login", "Sign in", "/login"),
)

# Fixed notices shown after a redirect (``?done=<code>``): no user text ever reaches the page.
NOTICES = {
    "signed_out": "You are signed out.",
    "account_created": "Account created.",
    "account_updated": "Account status changed.",
    "credits_granted": "Credits added to the ledger.",
    "key_updated": "Key settings saved.",
    "key_revoked": "Key revoked. Requests with it are refused from now on.",
    "price_saved": "Price saved. Gateways use it within a minute.",
    "price_reset": "Price reset to the catalog default.",
    "user_updated": "User updated.",
    "invitation_revoked": "Invitation withdrawn.",
    "settings_saved": "Settings saved.",
    "welcome": "Welcome! Create an API key to start.",
}


def credits_text(micro: int | None) -> str:
    """Micro-credits as credits: thousands separated, always six decimals (one format on every
    page, in every column and in CSV exports: ``49.999981``, ``25.000000``)."""
    if micro is None:
        return "—"
    whole, _, frac = format_credits(abs(int(micro))).partition(".")
    return f"{'-' if micro < 0 else ''}{int(whole):,}.{frac}"


# Charts of money: micro-credits shown as credits (a step is at least one micro-credit).
CREDITS_AXIS = Axis("credits", scale=MICRO, exact=lambda micro: credits_text(int(micro)))


def number(value: int | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def fixed(value: float | None, places: int = 3) -> str:
    """Scores and factors: ``0.912``; None is a dash."""
    return "—" if value is None else f"{value:,.{places}f}"


def signed(value: float | None, places: int = 3) -> str:
    return "—" if value is None else f"{value:+.{places}f}"


def short_key(hotkey: str) -> str:
    """``5Fh3k2…x9Qa`` for tables (the page title and the title attribute show it whole)."""
    return hotkey if len(hotkey) <= 14 else f"{hotkey[:6]}…{hotkey[-5:]}"


@cache
def _asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def template_engine() -> JinjaTemplateEngine:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        credits=credits_text,
        num=number,
        when=when,
        percent=percent,
        fixed=fixed,
        signed=signed,
        short_key=short_key,
        meter=meter,
    )
    return JinjaTemplateEngine.from_environment(env)


def csrf_for(request: Request[Any, Any, Any], dash: Dashboard) -> tuple[str, Cookie | None]:
    """The form token of this request, and the pre-sign-in cookie to set (if it needs one)."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    if (known := state.get(_CSRF)) is not None:
        return known, None
    found = signed_in(request)
    new_cookie = None
    if found is not None:
        secret = found.token
    else:
        secret = request.cookies.get(PRE_COOKIE) or ""
        if not secret:
            secret = new_token()
            new_cookie = cookie(dash, request, PRE_COOKIE, secret, max_age=None)
    state[_CSRF] = token = csrf_token(secret)
    return token, new_cookie


def page(
    request: Request[Any, Any, Any],
    dash: Dashboard,
    template: str,
    *,
    status: int = 200,
    active: str = "",
    title: str = "",
    cookies: list[Cookie] | None = None,
    nav: tuple[NavItem, ...] | None = None,
    brand: str = "",
    **context: Any,
) -> Template:
    """``nav`` and ``brand``: the navigation and the label beside the logo (default: the
    signed-in user's)."""
    found = signed_in(request)
    user = found.user if found is not None else None
    token, pre_cookie = csrf_for(request, dash)
    if nav is None:
        nav = () if user is None else STAFF_NAV if user.is_staff else CUSTOMER_NAV
    if not brand:
        brand = "operator" if user is not None and user.is_staff else "dashboard"
    done = request.query_params.get("done", "")
    all_cookies = list(cookies or [])
    if pre_cookie is not None:
        all_cookies.append(pre_cookie)
    return Template(
        template_name=template,
        status_code=status,
        cookies=all_cookies,
        context={
            "user": user,
            "nav": nav,
            "brand": brand,
            "active": active,
            "title": title,
            "csrf": token,
            "notice": NOTICES.get(done, ""),
            "url": dash.url,
            "static": lambda name: f"{dash.url('/static/' + name)}?v={_asset_version(name)}",
            **context,
        },
    )


def redirect(
    dash: Dashboard, path: str, *, done: str = "", cookies: list[Cookie] | None = None
) -> Redirect:
    """303 to a dashboard path (``done`` names a fixed notice for the next page)."""
    target = dash.url(path)
    if done:
        target += ("&" if "?" in target else "?") + f"done={done}"
    return Redirect(path=target, status_code=303, cookies=cookies or [])
