"""Operator pages, part 1: the business overview, the account list and one account (balance,
status, credits, keys, users, usage, ledger). Staff (admin, support) read; admins change."""

from __future__ import annotations

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Stream, Template

from billing import AccountInfo, BillingNotFound
from web.auth import admins_only, staff_only
from web.charts import TOKENS, bar_chart, line_chart
from web.controllers.common import (
    RANGES,
    Req,
    ip_of,
    model_ids,
    now,
    positive_id,
    range_days,
    today,
)
from web.controllers.customer_usage import csv_response, statement_context, usage_charts
from web.forms import FormError, choice, credits, text
from web.keyforms import key_status
from web.render import CREDITS_AXIS, credits_text, page, redirect
from web.reports import Totals, day_range
from web.sessions import SignedIn
from web.state import Dashboard
from web.statement import StatementQuery
from web.users import UserError, normalize_email

PAGE = 50


@get("/admin", guards=[staff_only])
async def admin_overview(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    days = range_days(request)
    start, end = day_range(days, today())
    daily, by_model = await dash.reports.daily_by_model(start, end)
    top = await dash.reports.top_accounts(start, end)
    cents, bought = await dash.reports.topups(start, end)
    accounts, keys = await dash.reports.counts()
    labels = [d.day.isoformat() for d in daily]

    def series(values: list[int]) -> list[tuple[str, int]]:
        return list(zip(labels, values, strict=True))

    return page(
        request,
        dash,
        "admin/overview.html",
        active="admin",
        title="Overview",
        days=days,
        ranges=RANGES,
        totals=Totals.add_up(d.totals for d in daily),
        topup_amount=f"{cents / 100:,.2f} {dash.settings.billing.currency.upper()}",
        topup_credits=bought,
        accounts=accounts,
        keys=keys,
        top=top,
        by_model=by_model,
        revenue_chart=bar_chart(
            f"Revenue (credits charged) per day, last {days} days",
            series([d.totals.cost for d in daily]),
            CREDITS_AXIS,
        ),
        requests_chart=bar_chart(
            f"Requests per day, last {days} days", series([d.totals.requests for d in daily])
        ),
        tokens_chart=line_chart(
            f"Tokens per day, last {days} days", series([d.totals.tokens for d in daily]), TOKENS
        ),
        errors_chart=bar_chart(
            f"Failed requests per day, last {days} days", series([d.totals.errors for d in daily])
        ),
    )


async def _accounts_page(
    request: Req, dash: Dashboard, *, status: int = 200, error: str = "", field: str = ""
) -> Template:
    query = request.query_params.get("q", "")[:100]
    after = positive_id(request, "after")
    rows, following = await dash.reports.accounts(query=query, after_id=after, limit=PAGE)
    return page(
        request,
        dash,
        "admin/accounts.html",
        status=status,
        active="accounts",
        title="Accounts",
        rows=rows,
        following=following,
        paged=after is not None,
        query=query,
        error=error,
        field=field,
    )


@get("/admin/accounts", guards=[staff_only])
async def accounts(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return await _accounts_page(request, dash)


@post("/admin/accounts", guards=[admins_only])
async def create_account(request: Req, dash: Dashboard, me: SignedIn) -> Template | Redirect:
    form = await request.form()
    try:
        name = text(form, "name", required=True, max_length=200)
        raw_email = text(form, "email", max_length=100)
        email = normalize_email(raw_email) if raw_email else None
        amount = credits(form, "credits")
    except (FormError, UserError) as exc:
        field = exc.field if isinstance(exc, FormError) else "email"
        return await _accounts_page(request, dash, status=400, error=str(exc), field=field)
    account = await dash.billing.accounts.create(name, email=email)
    if amount:
        await dash.billing.accounts.grant(
            account.id, amount, actor=me.user.actor, reason="initial credits"
        )
    await dash.audit.record(
        me.user,
        "account.create",
        account_id=account.id,
        target=f"account:{account.id}",
        detail=f"name={name} credits={credits_text(amount or 0)}",
        ip=ip_of(request, dash),
    )
    return redirect(dash, f"/admin/accounts/{account.id}", done="account_created")


async def _account(dash: Dashboard, account_id: int) -> AccountInfo:
    try:
        return await dash.billing.accounts.get(account_id)
    except BillingNotFound:
        raise NotFoundException("No such account.") from None


async def account_page(
    request: Req,
    dash: Dashboard,
    account_id: int,
    *,
    status: int = 200,
    error: str = "",
    field: str = "",
) -> Template:
    account = await _account(dash, account_id)
    start, end = day_range(30, today())
    daily = await dash.reports.daily(start, end, account_id=account_id)
    current = now()
    return page(
        request,
        dash,
        "admin/account.html",
        status=status,
        active="accounts",
        title=account.name,
        account=account,
        balance=await dash.billing.accounts.balance(account_id),
        keys=[(k, key_status(k, current)) for k in await dash.billing.keys.list_keys(account_id)],
        users=await dash.users.of_account(account_id),
        invitations=await dash.invitations.pending(account_id=account_id),
        totals=Totals.add_up(d.totals for d in daily),
        audit=await dash.audit.page(account_id=account_id, limit=10),
        models=model_ids(dash),
        default_rpm=dash.settings.billing.default_rpm or "",
        default_tpm=dash.settings.billing.default_tpm or "",
        error=error,
        field=field,
        **usage_charts(daily, 30),
        **await statement_context(request, dash, account_id),
    )


@get("/admin/accounts/{account_id:int}", guards=[staff_only])
async def account_detail(request: Req, dash: Dashboard, me: SignedIn, account_id: int) -> Template:
    return await account_page(request, dash, account_id)


@get("/admin/accounts/{account_id:int}/statement.csv", guards=[staff_only])
async def statement_export(request: Req, dash: Dashboard, me: SignedIn, account_id: int) -> Stream:
    await _account(dash, account_id)
    models = await dash.billing.accounts.statement_models(account_id)
    query = StatementQuery.parse(request.query_params, models)
    return csv_response(dash, account_id, query, f"account-{account_id}-statement")


@post("/admin/accounts/{account_id:int}/status", guards=[admins_only])
async def account_status(request: Req, dash: Dashboard, me: SignedIn, account_id: int) -> Redirect:
    await _account(dash, account_id)
    form = await request.form()
    try:
        wanted = choice(form, "status", ("active", "suspended"), "")
    except FormError:
        wanted = ""
    if wanted:
        await dash.billing.accounts.set_status(account_id, wanted)
        await dash.audit.record(
            me.user,
            f"account.{'suspend' if wanted == 'suspended' else 'activate'}",
            account_id=account_id,
            target=f"account:{account_id}",
            ip=ip_of(request, dash),
        )
    return redirect(dash, f"/admin/accounts/{account_id}", done="account_updated")


@post("/admin/accounts/{account_id:int}/grant", guards=[admins_only])
async def grant(
    request: Req, dash: Dashboard, me: SignedIn, account_id: int
) -> Template | Redirect:
    await _account(dash, account_id)
    form = await request.form()
    try:
        kind = choice(form, "kind", ("grant", "adjustment"), "grant")
        amount = credits(form, "amount", required=True, allow_negative=kind == "adjustment")
        reason = text(form, "reason", required=True, max_length=500)
        assert amount is not None
        if amount == 0:
            raise FormError("amount", "The amount must not be zero.")
        await dash.billing.accounts.grant(
            account_id, amount, actor=me.user.actor, reason=reason, kind=kind
        )
    except (FormError, ValueError) as exc:
        field = exc.field if isinstance(exc, FormError) else "amount"
        return await account_page(
            request, dash, account_id, status=400, error=str(exc), field=field
        )
    await dash.audit.record(
        me.user,
        f"credits.{kind}",
        account_id=account_id,
        target=f"account:{account_id}",
        detail=f"amount={credits_text(amount)} reason={reason}",
        ip=ip_of(request, dash),
    )
    return redirect(dash, f"/admin/accounts/{account_id}", done="credits_granted")
