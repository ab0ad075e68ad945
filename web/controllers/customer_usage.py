"""Customer pages, part 2: usage (daily aggregates and per-request records), billing (balance,
Stripe top-up, ledger) and the prices with a quick-start."""

from __future__ import annotations

import json
from typing import Any

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Stream, Template

from billing import receipt_fields
from billing.schemas import CheckoutRequest
from core.errors import InvalidRequest
from scoring import request_check
from web.auth import customers_only
from web.charts import TOKENS, bar_chart, line_chart
from web.controllers.common import (
    RANGES,
    Req,
    api_base,
    ip_of,
    positive_id,
    range_days,
    sample_model,
    today,
)
from web.forms import FormError, whole
from web.render import CREDITS_AXIS, page
from web.reports import DayTotals, Totals, day_range
from web.sessions import SignedIn
from web.state import Dashboard
from web.statement import KIND_LABELS, StatementQuery, statement_csv, statement_page

PAGE = 50


def _account(me: SignedIn) -> int:
    assert me.user.account_id is not None  # customers_only guarantees it
    return me.user.account_id


def usage_charts(daily: list[DayTotals], days: int) -> dict[str, Any]:
    """The three usage charts (shared with the operator's account page)."""
    labels = [d.day.isoformat() for d in daily]
    return {
        "cost_chart": bar_chart(
            f"Credits spent per day, last {days} days",
            list(zip(labels, [d.totals.cost for d in daily], strict=True)),
            CREDITS_AXIS,
        ),
        "requests_chart": bar_chart(
            f"Requests per day, last {days} days",
            list(zip(labels, [d.totals.requests for d in daily], strict=True)),
        ),
        "tokens_chart": line_chart(
            f"Tokens per day, last {days} days",
            list(zip(labels, [d.totals.tokens for d in daily], strict=True)),
            TOKENS,
        ),
    }


@get("/usage", guards=[customers_only])
async def usage(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    account_id = _account(me)
    days = range_days(request)
    start, end = day_range(days, today())
    daily, by_model = await dash.reports.daily_by_model(start, end, account_id=account_id)
    cursor = request.query_params.get("cursor") or None
    rows, next_cursor = await dash.billing.usage.by_day(
        account_id, start=start, end=end, limit=PAGE, cursor=cursor
    )
    return page(
        request,
        dash,
        "customer/usage.html",
        active="usage",
        title="Usage",
        days=days,
        ranges=RANGES,
        totals=Totals.add_up(d.totals for d in daily),
        by_model=by_model,
        rows=rows,
        next_cursor=next_cursor,
        paged=cursor is not None,
        **usage_charts(daily, days),
    )


@get("/usage/requests", guards=[customers_only])
async def requests(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    account_id = _account(me)
    before = positive_id(request, "before")
    rows = await dash.billing.usage.requests(account_id, limit=PAGE + 1, before_id=before)
    names = {k.id: k.name for k in await dash.billing.keys.list_keys(account_id)}
    return page(
        request,
        dash,
        "customer/requests.html",
        active="usage",
        title="Requests",
        rows=rows[:PAGE],
        names=names,
        older=rows[PAGE - 1].id if len(rows) > PAGE else None,
        paged=before is not None,
    )


@get("/usage/requests/{request_id:str}", guards=[customers_only])
async def request_detail(request: Req, dash: Dashboard, me: SignedIn, request_id: str) -> Template:
    """Who served one of the account's requests: the miner, its receipt, the check."""
    served = await dash.billing.usage.receipts.served(_account(me), request_id)
    if served is None:
        raise NotFoundException("No such request on this account.")
    check = (
        await request_check(dash.db, served.request_id, hotkey=served.miner_hotkey)
        if served.miner_hotkey
        else None
    )
    receipt = receipt_fields(served.receipt)
    return page(
        request,
        dash,
        "customer/request.html",
        active="usage",
        title=f"Request {served.request_id}",
        served=served,
        check=check,
        receipt_json=json.dumps(receipt, indent=2) if receipt else "",
    )


async def statement_context(request: Req, dash: Dashboard, account_id: int) -> dict[str, Any]:
    """The statement, its filters and its pages (shared with the operator's account page)."""
    models = await dash.billing.accounts.statement_models(account_id)
    query = StatementQuery.parse(request.query_params, models)
    before = positive_id(request, "before")
    lines, older = await statement_page(dash, account_id, query, before)
    return {
        "lines": lines,
        "older": older,
        "paged": before is not None,
        "query": query,
        "filtered": query.active,
        "statement_keys": await dash.billing.keys.list_keys(account_id),
        "statement_models": models,
        "kind_labels": KIND_LABELS,
    }


def csv_response(dash: Dashboard, account_id: int, query: StatementQuery, name: str) -> Stream:
    return Stream(
        statement_csv(dash, account_id, query),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{name}-{today().isoformat()}.csv"',
            "cache-control": "no-store",
        },
    )


async def _billing_page(
    request: Req, dash: Dashboard, me: SignedIn, *, status: int = 200, error: str = ""
) -> Template:
    account_id = _account(me)
    cfg = dash.settings.billing
    checkout = request.query_params.get("checkout", "")
    return page(
        request,
        dash,
        "customer/billing.html",
        status=status,
        active="billing",
        title="Billing",
        account=await dash.billing.accounts.get(account_id),
        balance=await dash.billing.accounts.balance(account_id),
        topup=dash.billing.stripe is not None,
        min_credits=cfg.checkout_min_credits,
        max_credits=cfg.checkout_max_credits,
        unit_price=f"{cfg.credit_price_cents / 100:.2f} {cfg.currency.upper()}",
        checkout=checkout if checkout in ("success", "cancel") else "",
        error=error,
        **await statement_context(request, dash, account_id),
    )


@get("/billing", guards=[customers_only])
async def billing(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return await _billing_page(request, dash, me)


@get("/billing/statement.csv", guards=[customers_only])
async def statement_export(request: Req, dash: Dashboard, me: SignedIn) -> Stream:
    account_id = _account(me)
    models = await dash.billing.accounts.statement_models(account_id)
    query = StatementQuery.parse(request.query_params, models)
    return csv_response(dash, account_id, query, "statement")


@post("/billing/checkout", guards=[customers_only])
async def checkout(request: Req, dash: Dashboard, me: SignedIn) -> Template | Redirect:
    """Start a Stripe Checkout for whole credits and send the browser there."""
    form = await request.form()
    cfg = dash.settings.billing
    try:
        amount = whole(
            form, "credits", minimum=cfg.checkout_min_credits, maximum=cfg.checkout_max_credits
        )
        if amount is None:
            raise FormError("credits", "Enter how many credits to buy.")
        session = await dash.billing.api.checkout(_account(me), CheckoutRequest(credits=amount))
    except (FormError, InvalidRequest) as exc:
        message = exc.message if isinstance(exc, FormError | InvalidRequest) else str(exc)
        return await _billing_page(request, dash, me, status=400, error=message)
    await dash.audit.record(
        me.user,
        "checkout.create",
        account_id=_account(me),
        target=f"checkout:{session.id}",
        detail=f"credits={amount}",
        ip=ip_of(request, dash),
    )
    return Redirect(path=session.url, status_code=303)


@get("/docs", guards=[customers_only])
async def docs(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return page(
        request,
        dash,
        "customer/docs.html",
        active="docs",
        title="Prices & quick start",
        prices=await dash.billing.prices.listing(),
        base_url=api_base(request, dash),
        model=sample_model(dash),
    )
