"""Operator pages, part 3: prices per task, staff users and invitations, the audit log and the
site settings (sign-up on or off)."""

from __future__ import annotations

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from billing import BillingNotFound
from protocol.catalog import Price
from web.audit import PUBLIC_SCOREBOARD, SIGNUP_ENABLED
from web.auth import admins_only, plain_http_exposed, staff_only
from web.controllers.admin_keys import invitation_link
from web.controllers.common import Req, ip_of, now, positive_id
from web.controllers.once import show_once
from web.forms import FormError, checked, choice, credits, text
from web.render import credits_text, page, redirect
from web.sessions import SignedIn
from web.state import Dashboard
from web.users import STAFF_ROLES, UserError


async def _prices_page(
    request: Req, dash: Dashboard, *, status: int = 200, error: str = "", task: str = ""
) -> Template:
    return page(
        request,
        dash,
        "admin/prices.html",
        status=status,
        active="prices",
        title="Prices",
        prices=await dash.billing.prices.listing(),
        error=error,
        error_task=task,
    )


@get("/admin/prices", guards=[staff_only])
async def prices(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return await _prices_page(request, dash)


@post("/admin/prices", guards=[admins_only])
async def set_price(request: Req, dash: Dashboard, me: SignedIn) -> Template | Redirect:
    form = await request.form()
    task = str(form.get("task") or "")[:128]
    try:
        price = Price(
            input_per_million=credits(form, "input") or 0,
            output_per_million=credits(form, "output") or 0,
            per_step=credits(form, "per_step") or 0,
        )
        await dash.billing.prices.set(task, price, actor=me.user.actor)
    except FormError as exc:
        return await _prices_page(request, dash, status=400, error=exc.message, task=task)
    except BillingNotFound:
        raise NotFoundException("No such task in the catalog.") from None
    await dash.audit.record(
        me.user,
        "price.set",
        target=f"task:{task}",
        detail=(
            f"input={credits_text(price.input_per_million)} "
            f"output={credits_text(price.output_per_million)} "
            f"per_step={credits_text(price.per_step)}"
        ),
        ip=ip_of(request, dash),
    )
    return redirect(dash, "/admin/prices", done="price_saved")


@post("/admin/prices/reset", guards=[admins_only])
async def reset_price(request: Req, dash: Dashboard, me: SignedIn) -> Redirect:
    form = await request.form()
    task = str(form.get("task") or "")[:128]
    if task and await dash.billing.prices.reset(task):
        await dash.audit.record(
            me.user, "price.reset", target=f"task:{task}", ip=ip_of(request, dash)
        )
    return redirect(dash, "/admin/prices", done="price_reset")


async def _users_page(
    request: Req, dash: Dashboard, *, status: int = 200, error: str = ""
) -> Template:
    return page(
        request,
        dash,
        "admin/users.html",
        status=status,
        active="users",
        title="Users",
        staff=await dash.users.staff(),
        invitations=await dash.invitations.pending(),
        now=now(),
        error=error,
    )


@get("/admin/users", guards=[staff_only])
async def users(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return await _users_page(request, dash)


@post("/admin/users/invite", guards=[admins_only])
async def invite_staff(request: Req, dash: Dashboard, me: SignedIn) -> Template | Redirect:
    form = await request.form()
    try:
        email = text(form, "email", required=True, max_length=100)
        role = choice(form, "role", STAFF_ROLES, "support")
        token, invitation = await dash.invitations.create(
            email, role=role, account_id=None, created_by=me.user.actor
        )
    except (FormError, UserError) as exc:
        return await _users_page(request, dash, status=400, error=str(exc))
    await dash.audit.record(
        me.user,
        "user.invite",
        target=f"invitation:{invitation.id}",
        detail=f"email={invitation.email} role={role}",
        ip=ip_of(request, dash),
    )
    return await show_once(
        request,
        dash,
        me,
        "invite",
        invitation_link(request, dash, token),
        subject_id=invitation.id,
        back="/admin/users",
    )


@post("/admin/users/{user_id:int}/{action:str}", guards=[admins_only])
async def set_user_state(
    request: Req, dash: Dashboard, me: SignedIn, user_id: int, action: str
) -> Template | Redirect:
    """``disable`` (ends the user's sessions) or ``enable`` a staff or customer user."""
    if action not in ("disable", "enable"):
        raise NotFoundException("No such action.")
    target = await dash.users.get(user_id)
    if target is None:
        raise NotFoundException("No such user.")
    if action == "disable" and target.id == me.user.id:
        return await _users_page(request, dash, status=400, error="You cannot disable yourself.")
    if action == "disable" and target.is_admin and await dash.users.count_admins() <= 1:
        return await _users_page(
            request, dash, status=400, error="Keep at least one administrator."
        )
    await dash.users.set_disabled(user_id, action == "disable")
    await dash.audit.record(
        me.user,
        f"user.{action}",
        account_id=target.account_id,
        target=f"user:{target.email}",
        ip=ip_of(request, dash),
    )
    back = f"/admin/accounts/{target.account_id}" if target.account_id else "/admin/users"
    return redirect(dash, back, done="user_updated")


@post("/admin/invitations/{invitation_id:int}/revoke", guards=[admins_only])
async def revoke_invitation(
    request: Req, dash: Dashboard, me: SignedIn, invitation_id: int
) -> Redirect:
    if await dash.invitations.revoke(invitation_id):
        await dash.audit.record(
            me.user,
            "invitation.revoke",
            target=f"invitation:{invitation_id}",
            ip=ip_of(request, dash),
        )
    return redirect(dash, "/admin/users", done="invitation_revoked")


@get("/admin/audit", guards=[staff_only])
async def audit(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    before = positive_id(request, "before")
    account = positive_id(request, "account")
    lines = await dash.audit.page(account_id=account, before_id=before, limit=51)
    return page(
        request,
        dash,
        "admin/audit.html",
        active="audit",
        title="Audit log",
        lines=lines[:50],
        older=lines[49].id if len(lines) > 50 else None,
        paged=before is not None,
        account=account,
    )


@get("/admin/settings", guards=[staff_only])
async def settings_page(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return page(
        request,
        dash,
        "admin/settings.html",
        active="settings",
        title="Settings",
        signup=await dash.site.signup_enabled(),
        scoreboard=await public_scoreboard_on(dash),
        signup_credits=dash.settings.web.signup_credits,
        stripe=dash.billing.stripe is not None,
        plain_http=plain_http_exposed(request),
        scheme=request.scope.get("scheme", "http"),
        web=dash.settings.web,
    )


@post("/admin/settings", guards=[admins_only])
async def save_settings(request: Req, dash: Dashboard, me: SignedIn) -> Redirect:
    form = await request.form()
    for key, action in (
        (SIGNUP_ENABLED, "settings.signup"),
        (PUBLIC_SCOREBOARD, "settings.scoreboard"),
    ):
        enabled = checked(form, key)
        await dash.site.set_flag(key, enabled, actor=me.user.actor)
        await dash.audit.record(
            me.user, action, detail=f"enabled={enabled}", ip=ip_of(request, dash)
        )
    return redirect(dash, "/admin/settings", done="settings_saved")


async def public_scoreboard_on(dash: Dashboard) -> bool:
    return await dash.site.flag(PUBLIC_SCOREBOARD, dash.settings.web.public_scoreboard)
