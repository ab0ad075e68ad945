"""The billing endpoints, mounted on the gateway (handlers in ``billing.api``, wire Structs in
``billing.schemas``); errors are the OpenAI envelope like everywhere else.

    POST /v1/billing/checkout        API key → a Stripe Checkout Session for the key's account
    POST /v1/billing/stripe/webhook  no API key: the raw body and its ``Stripe-Signature``
    GET  /v1/billing/usage           API key → daily usage of the key's account
    GET  /v1/billing/balance         API key → available and held credits of the key's account

With billing off they answer 404 ``billing_not_enabled`` (after authenticating the caller); the
Stripe endpoints without Stripe configured 404 ``payments_not_enabled``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, get, post
from litestar.types import ASGIApp

from billing import BillingApi, BillingNotEnabled
from billing.schemas import CheckoutRequest, UsageQuery
from core.errors import InvalidRequest
from gateway.context import RequestContext, begin
from gateway.events import ENCODER
from gateway.http import json_response
from gateway.state import Gateway
from gateway.validation import convert, decode, json_body

CHECKOUT = "/v1/billing/checkout"
WEBHOOK = "/v1/billing/stripe/webhook"
USAGE = "/v1/billing/usage"
BALANCE = "/v1/billing/balance"
CHECKOUT_REQUEST = msgspec.json.Decoder(CheckoutRequest)
DISABLED = "Billing is not enabled on this validator."


def _api(gateway: Gateway) -> BillingApi:
    if gateway.billing is None:
        raise BillingNotEnabled(DISABLED)
    return gateway.billing.api


async def key_account(
    request: Request[Any, Any, Any], gateway: Gateway, route: str
) -> tuple[RequestContext, BillingApi, int]:
    """Authenticate the API key; its account."""
    ctx = await begin(request, gateway, route)
    api = _api(gateway)
    key = ctx.caller.key if ctx.caller is not None else None
    if key is None:
        raise BillingNotEnabled(DISABLED)
    return ctx, api, key.account_id


def answer(ctx: RequestContext | None, payload: msgspec.Struct) -> ASGIApp:
    if ctx is not None:
        ctx.gateway.metrics.request(ctx.route, "-", 200, ctx.elapsed())
        ctx.end_span(200)
    return json_response(ENCODER.encode(payload))


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    raw = request.scope.get("query_string", b"").decode("latin-1")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name in fields:
            raise InvalidRequest(f"'{name}' is given more than once.", param=name)
        fields[name] = value
    return fields


@post(CHECKOUT, status_code=200)
async def checkout(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx, api, account_id = await key_account(request, gateway, CHECKOUT)
    body = decode(CHECKOUT_REQUEST, await json_body(request))
    return answer(ctx, await api.checkout(account_id, body))


@post(WEBHOOK, status_code=200)
async def stripe_webhook(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    api = _api(gateway)
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    return answer(None, await api.stripe_webhook(payload, signature))


@get(USAGE)
async def usage(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx, api, account_id = await key_account(request, gateway, USAGE)
    query = convert(_query(request), UsageQuery)
    return answer(ctx, await api.usage(account_id, query))


@get(BALANCE)
async def balance(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    ctx, api, account_id = await key_account(request, gateway, BALANCE)
    return answer(ctx, await api.balance(account_id))


BILLING_HANDLERS = (checkout, stripe_webhook, usage, balance)
