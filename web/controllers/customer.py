"""Customer pages, part 1: the overview and the account's API keys. Every query is scoped to
``me.user.account_id`` (from the session), never to an id taken from the request."""

from __future__ import annotations

from litestar import get, post
from litestar.response import Redirect, Template

from billing import KeyInfo
from web.auth import customers_only
from web.charts import bar_chart
from web.controllers.common import (
    Req,
    api_base,
    ip_of,
    key_of_account,
    model_ids,
    now,
    sample_model,
    today,
)
from web.controllers.once import show_once
from web.forms import FormError
from web.keyforms import key_status, parse_key_form
from web.render import CREDITS_AXIS, page, redirect
from web.reports import Totals, day_range
from web.sessions import SignedIn
from web.state import Dashboard


def _account(me: SignedIn) -> int:
    account_id = me.user.account_id
    assert account_id is not None  # customers_only guarantees it
    return account_id


@get("/overview", guards=[customers_only])
async def overview(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    account_id = _account(me)
    account = await dash.billing.accounts.get(account_id)
    balance = await dash.billing.accounts.balance(account_id)
    start, end = day_range(30, today())
    daily = await dash.reports.daily(start, end, account_id=account_id)
    total = Totals.add_up(d.totals for d in daily)
    keys = await dash.billing.keys.list_keys(account_id)
    current = now()
    return page(
        request,
        dash,
        "customer/overview.html",
        active="overview",
        title="Overview",
        account=account,
        balance=balance,
        totals=total,
        spend_chart=bar_chart(
            "Credits spent per day, last 30 days",
            [(d.day.isoformat(), d.totals.cost) for d in daily],
            CREDITS_AXIS,
        ),
        active_keys=sum(1 for k in keys if key_status(k, current) == "active"),
        base_url=api_base(request, dash),
        model=sample_model(dash),
    )


async def _keys_page(
    request: Req,
    dash: Dashboard,
    me: SignedIn,
    *,
    status: int = 200,
    error: str = "",
    field: str = "",
) -> Template:
    keys = await dash.billing.keys.list_keys(_account(me))
    current = now()
    return page(
        request,
        dash,
        "customer/keys.html",
        status=status,
        active="keys",
        title="API keys",
        keys=[(k, key_status(k, current)) for k in reversed(keys)],
        models=model_ids(dash),
        error=error,
        field=field,
    )


@get("/keys", guards=[customers_only])
async def keys(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return await _keys_page(request, dash, me)


@post("/keys", guards=[customers_only])
async def create_key(request: Req, dash: Dashboard, me: SignedIn) -> Template | Redirect:
    form = await request.form()
    try:
        fields = parse_key_form(form, model_ids(dash), limits=False, today=today())
    except FormError as exc:
        return await _keys_page(request, dash, me, status=400, error=exc.message, field=exc.field)
    created = await dash.billing.keys.create(
        _account(me), fields.name, actor=me.user.actor, **fields.as_kwargs()
    )
    await dash.audit.record(
        me.user,
        "key.create",
        account_id=_account(me),
        target=f"key:{created.key.id}",
        detail=f"name={fields.name}",
        ip=ip_of(request, dash),
    )
    return await show_once(
        request, dash, me, "key", created.secret, subject_id=created.key.id, back="/keys"
    )


@get("/keys/{key_id:int}", guards=[customers_only])
async def key_detail(request: Req, dash: Dashboard, me: SignedIn, key_id: int) -> Template:
    key = await key_of_account(dash, key_id, _account(me))
    return key_page(request, dash, key)


def key_page(
    request: Req,
    dash: Dashboard,
    key: KeyInfo,
    *,
    template: str = "customer/key.html",
    active: str = "keys",
    status: int = 200,
    error: str = "",
    field: str = "",
) -> Template:
    """A key's page (the customer's, or with ``template``/``active`` the operator's)."""
    return page(
        request,
        dash,
        template,
        status=status,
        active=active,
        title=f"Key {key.name}",
        key=key,
        state=key_status(key, now()),
        models=model_ids(dash),
        error=error,
        field=field,
    )


@post("/keys/{key_id:int}", guards=[customers_only])
async def update_key(
    request: Req, dash: Dashboard, me: SignedIn, key_id: int
) -> Template | Redirect:
    key = await key_of_account(dash, key_id, _account(me))
    form = await request.form()
    try:
        fields = parse_key_form(form, model_ids(dash), limits=False, today=today())
    except FormError as exc:
        return key_page(request, dash, key, status=400, error=exc.message, field=exc.field)
    await dash.billing.keys.update(key.id, name=fields.name, **fields.as_kwargs())
    await dash.audit.record(
        me.user,
        "key.update",
        account_id=key.account_id,
        target=f"key:{key.id}",
        ip=ip_of(request, dash),
    )
    return redirect(dash, f"/keys/{key.id}", done="key_updated")


@post("/keys/{key_id:int}/rotate", guards=[customers_only])
async def rotate_key(
    request: Req, dash: Dashboard, me: SignedIn, key_id: int
) -> Template | Redirect:
    key = await key_of_account(dash, key_id, _account(me))
    try:
        created = await dash.billing.keys.rotate(key.id)
    except ValueError as exc:
        return key_page(request, dash, key, status=409, error=str(exc))
    await dash.audit.record(
        me.user,
        "key.rotate",
        account_id=key.account_id,
        target=f"key:{key.id}",
        ip=ip_of(request, dash),
    )
    return await show_once(
        request, dash, me, "rotated", created.secret, subject_id=key.id, back="/keys"
    )


@post("/keys/{key_id:int}/revoke", guards=[customers_only])
async def revoke_key(request: Req, dash: Dashboard, me: SignedIn, key_id: int) -> Redirect:
    key = await key_of_account(dash, key_id, _account(me))
    await dash.billing.keys.revoke(key.id)
    await dash.audit.record(
        me.user,
        "key.revoke",
        account_id=key.account_id,
        target=f"key:{key.id}",
        ip=ip_of(request, dash),
    )
    return redirect(dash, "/keys", done="key_revoked")
