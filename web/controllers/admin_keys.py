"""Operator pages, part 2: API keys of any account (create, limits, allowlist, caps, expiry,
rotate, revoke) and inviting a customer user to an account."""

from __future__ import annotations

from functools import partial

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from billing import BillingNotFound, KeyInfo
from web.auth import admins_only, staff_only
from web.controllers.admin import account_page
from web.controllers.common import Req, ip_of, model_ids, today
from web.controllers.customer import key_page
from web.controllers.once import show_once
from web.forms import FormError, text
from web.keyforms import parse_key_form
from web.render import redirect
from web.sessions import SignedIn
from web.state import Dashboard
from web.users import UserError


async def _key(dash: Dashboard, key_id: int) -> KeyInfo:
    try:
        return await dash.billing.keys.get(key_id)
    except BillingNotFound:
        raise NotFoundException("No such key.") from None


@post("/admin/accounts/{account_id:int}/keys", guards=[admins_only])
async def create_key(
    request: Req, dash: Dashboard, me: SignedIn, account_id: int
) -> Template | Redirect:
    form = await request.form()
    try:
        fields = parse_key_form(form, model_ids(dash), limits=True, today=today())
        created = await dash.billing.keys.create(
            account_id, fields.name, actor=me.user.actor, **fields.as_kwargs()
        )
    except FormError as exc:
        return await account_page(
            request, dash, account_id, status=400, error=exc.message, field=exc.field
        )
    except BillingNotFound:
        raise NotFoundException("No such account.") from None
    await dash.audit.record(
        me.user,
        "key.create",
        account_id=account_id,
        target=f"key:{created.key.id}",
        detail=f"name={fields.name}",
        ip=ip_of(request, dash),
    )
    return await show_once(
        request,
        dash,
        me,
        "key",
        created.secret,
        subject_id=created.key.id,
        back=f"/admin/accounts/{account_id}",
    )


_key_page = partial(key_page, template="admin/key.html", active="accounts")


@get("/admin/keys/{key_id:int}", guards=[staff_only])
async def key_detail(request: Req, dash: Dashboard, me: SignedIn, key_id: int) -> Template:
    return _key_page(request, dash, await _key(dash, key_id))


@post("/admin/keys/{key_id:int}", guards=[admins_only])
async def update_key(
    request: Req, dash: Dashboard, me: SignedIn, key_id: int
) -> Template | Redirect:
    key = await _key(dash, key_id)
    form = await request.form()
    try:
        fields = parse_key_form(form, model_ids(dash), limits=True, today=today())
    except FormError as exc:
        return _key_page(request, dash, key, status=400, error=exc.message, field=exc.field)
    await dash.billing.keys.update(key.id, name=fields.name, **fields.as_kwargs())
    await dash.audit.record(
        me.user,
        "key.update",
        account_id=key.account_id,
        target=f"key:{key.id}",
        detail=f"rpm={fields.rpm_limit} tpm={fields.tpm_limit} models={fields.allowed_models}",
        ip=ip_of(request, dash),
    )
    return redirect(dash, f"/admin/keys/{key.id}", done="key_updated")


@post("/admin/keys/{key_id:int}/rotate", guards=[admins_only])
async def rotate_key(
    request: Req, dash: Dashboard, me: SignedIn, key_id: int
) -> Template | Redirect:
    key = await _key(dash, key_id)
    try:
        created = await dash.billing.keys.rotate(key.id)
    except ValueError as exc:
        return _key_page(request, dash, key, status=409, error=str(exc))
    await dash.audit.record(
        me.user,
        "key.rotate",
        account_id=key.account_id,
        target=f"key:{key.id}",
        ip=ip_of(request, dash),
    )
    return await show_once(
        request,
        dash,
        me,
        "rotated",
        created.secret,
        subject_id=key.id,
        back=f"/admin/keys/{key.id}",
    )


@post("/admin/keys/{key_id:int}/revoke", guards=[admins_only])
async def revoke_key(request: Req, dash: Dashboard, me: SignedIn, key_id: int) -> Redirect:
    key = await _key(dash, key_id)
    await dash.billing.keys.revoke(key.id)
    await dash.audit.record(
        me.user,
        "key.revoke",
        account_id=key.account_id,
        target=f"key:{key.id}",
        ip=ip_of(request, dash),
    )
    return redirect(dash, f"/admin/keys/{key.id}", done="key_revoked")


def invitation_link(request: Req, dash: Dashboard, token: str) -> str:
    return str(request.base_url).rstrip("/") + dash.url(f"/invite/{token}")


@post("/admin/accounts/{account_id:int}/invite", guards=[admins_only])
async def invite_customer(
    request: Req, dash: Dashboard, me: SignedIn, account_id: int
) -> Template | Redirect:
    form = await request.form()
    try:
        email = text(form, "email", required=True, max_length=100)
        token, invitation = await dash.invitations.create(
            email, role="customer", account_id=account_id, created_by=me.user.actor
        )
    except (FormError, UserError) as exc:
        return await account_page(
            request, dash, account_id, status=400, error=str(exc), field="invite"
        )
    await dash.audit.record(
        me.user,
        "user.invite",
        account_id=account_id,
        target=f"invitation:{invitation.id}",
        detail=f"email={invitation.email} role=customer",
        ip=ip_of(request, dash),
    )
    return await show_once(
        request,
        dash,
        me,
        "invite",
        invitation_link(request, dash, token),
        subject_id=invitation.id,
        back=f"/admin/accounts/{account_id}",
    )
