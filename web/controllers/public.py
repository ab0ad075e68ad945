"""Signing in and out, sign-up, invitations, and the root that sends each role home."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from web.auth import PRE_COOKIE, SESSION_COOKIE, cookie, expired_cookie, signed_in
from web.controllers.admin_site import public_scoreboard_on
from web.controllers.common import ip_of
from web.errors import TooManyAttempts
from web.forms import FormError, text
from web.passwords import password_problem
from web.render import page, redirect
from web.sessions import SignedIn
from web.state import Dashboard
from web.users import User, UserError, normalize_email

Req = Request[Any, Any, Any]


def home_path(user: User) -> str:
    return "/admin" if user.is_staff else "/overview"


def safe_next(dash: Dashboard, raw: str | None) -> str:
    """A post-sign-in destination inside the dashboard, or "" (no open redirects)."""
    value = (raw or "").strip()
    inside = value == dash.mount_path or value.startswith(dash.mount_path + "/")
    if not inside or len(value) > 500 or "//" in value or "\\" in value:
        return ""
    return value


async def start_session(request: Req, dash: Dashboard, user: User, target: str) -> Redirect:
    """A new session (a new token on every sign-in; the browser's previous one ends)."""
    if previous := request.cookies.get(SESSION_COOKIE):
        await dash.sessions.end(previous)
    session = await dash.sessions.create(
        user, ip=ip_of(request, dash), user_agent=request.headers.get("user-agent", "")
    )
    cookies = [
        cookie(
            dash,
            request,
            SESSION_COOKIE,
            session.token,
            max_age=dash.settings.web.session_absolute_timeout_s,
        ),
        expired_cookie(dash, request, PRE_COOKIE),
    ]
    return Redirect(path=target or dash.url(home_path(user)), status_code=303, cookies=cookies)


@get("/", name="home")
async def root(request: Req, dash: Dashboard) -> Redirect:
    """Customers get their overview (``customer.overview``), staff theirs, others sign in."""
    found = signed_in(request)
    if found is None:
        return redirect(dash, "/login")
    return redirect(dash, home_path(found.user))


@get("/login")
async def login_form(request: Req, dash: Dashboard) -> Template | Redirect:
    if (found := signed_in(request)) is not None:
        return redirect(dash, home_path(found.user))
    return page(
        request,
        dash,
        "login.html",
        title="Sign in",
        next=safe_next(dash, request.query_params.get("next")),
        email="",
        error="",
        signup=await dash.site.signup_enabled(),
        scoreboard=await public_scoreboard_on(dash),
    )


@post("/login")
async def login(request: Req, dash: Dashboard) -> Template | Redirect:
    form = await request.form()
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")[:1024]
    target = safe_next(dash, str(form.get("next") or ""))
    ip = ip_of(request, dash)
    if wait := await dash.limiter.retry_after(email, ip):
        minutes = max(1, (wait + 59) // 60)
        raise TooManyAttempts(
            detail=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            headers={"retry-after": str(wait)},
        )
    user = await dash.users.authenticate(email, password)
    if user is None:
        await dash.limiter.failed(email, ip)
        await dash.audit.record(None, "auth.login_failed", target=email[:200], ip=ip)
        return page(
            request,
            dash,
            "login.html",
            status=401,
            title="Sign in",
            next=target,
            email=email,
            error="The e-mail or password is not right.",
            signup=await dash.site.signup_enabled(),
            scoreboard=await public_scoreboard_on(dash),
        )
    await dash.limiter.succeeded(email, ip)
    await dash.audit.record(user, "auth.login", account_id=user.account_id, ip=ip)
    return await start_session(request, dash, user, target)


@post("/logout")
async def logout(request: Req, dash: Dashboard, me: SignedIn) -> Redirect:
    await dash.sessions.end(me.token)
    await dash.audit.record(
        me.user, "auth.logout", account_id=me.user.account_id, ip=ip_of(request, dash)
    )
    return redirect(
        dash, "/login", done="signed_out", cookies=[expired_cookie(dash, request, SESSION_COOKIE)]
    )


async def _signup_open(dash: Dashboard) -> None:
    if not await dash.site.signup_enabled():
        raise NotFoundException(
            "Sign-up is closed on this validator. Ask its operators for an invitation."
        )


@get("/signup")
async def signup_form(request: Req, dash: Dashboard) -> Template:
    await _signup_open(dash)
    return page(
        request, dash, "signup.html", title="Create an account", form={}, error="", field=""
    )


@post("/signup")
async def signup(request: Req, dash: Dashboard) -> Template | Redirect:
    await _signup_open(dash)
    form = await request.form()
    values = {"email": str(form.get("email") or ""), "name": str(form.get("account") or "")}
    try:
        account_name = text(form, "account", required=True, max_length=200)
        email = normalize_email(text(form, "email", required=True, max_length=100))
        password = str(form.get("password") or "")
        if await dash.users.by_email(email) is not None:
            raise FormError("email", "An account with this e-mail exists. Sign in instead.")
        if problem := password_problem(password):
            raise FormError("password", problem)
        account = await dash.billing.accounts.create(account_name, email=email)
        user = await dash.users.create(email, password, role="customer", account_id=account.id)
    except (FormError, UserError) as exc:
        field = exc.field if isinstance(exc, FormError) else ""
        return page(
            request,
            dash,
            "signup.html",
            status=400,
            title="Create an account",
            form=values,
            error=str(exc),
            field=field,
        )
    if grant := dash.settings.web.signup_credits:
        await dash.billing.accounts.grant(
            account.id, grant, actor="signup", reason="sign-up credits"
        )
    await dash.audit.record(
        user,
        "auth.signup",
        account_id=account.id,
        target=f"account:{account.id}",
        ip=ip_of(request, dash),
    )
    return await start_session(request, dash, user, dash.url("/overview") + "?done=welcome")


@get("/invite/{token:str}")
async def invitation_form(request: Req, dash: Dashboard, token: str) -> Template:
    invitation = await dash.invitations.find(token)
    if invitation is None:
        raise NotFoundException(
            "This invitation has expired or was already used. Ask for a new one."
        )
    return page(
        request,
        dash,
        "invite.html",
        title="Accept invitation",
        invitation=invitation,
        token=token,
        error="",
    )


@post("/invite/{token:str}")
async def accept_invitation(request: Req, dash: Dashboard, token: str) -> Template | Redirect:
    invitation = await dash.invitations.find(token)
    if invitation is None:
        raise NotFoundException(
            "This invitation has expired or was already used. Ask for a new one."
        )
    form = await request.form()
    try:
        user = await dash.invitations.accept(
            token, str(form.get("password") or ""), name=text(form, "name", max_length=200)
        )
    except (FormError, UserError) as exc:
        return page(
            request,
            dash,
            "invite.html",
            status=400,
            title="Accept invitation",
            invitation=invitation,
            token=token,
            error=str(exc),
        )
    await dash.audit.record(
        user,
        "invitation.accept",
        account_id=user.account_id,
        target=f"invitation:{invitation.id}",
        ip=ip_of(request, dash),
    )
    return await start_session(request, dash, user, "")
