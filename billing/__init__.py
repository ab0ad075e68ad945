"""Billing: accounts, API keys, the credit ledger (hold → settle), prices, per-key rate limits,
Stripe top-ups, usage records. Money is integer micro-credits (1 credit = 1,000,000).

Composition (once per process; see ``billing.components``)::

    db = Database.from_url(settings.database_url, settings.database)
    billing = Billing.create(settings, catalog, db, redis)   # redis: core.redis.create_redis(...)
    await billing.start()                                    # key-invalidation listener
    sweeper = asyncio.create_task(run_sweeper(billing.service,
                                              interval_s=settings.billing.sweep_interval_s))
    ...
    await billing.aclose()

The hot path, per request (every call below is safe to make from many replicas at once)::

    ctx = await billing.authenticator.authenticate(raw_key)
        # -> KeyContext. No database read while cached (in-process TTL → Redis → DB).
        # raises InvalidApiKey (401 invalid_api_key): malformed/bad checksum, unknown, revoked,
        #        expired key; AccountSuspended (403 account_suspended).
    billing.authenticator.authorize(ctx, model)
        # raises ModelNotAllowed (403 model_not_allowed, param="model"). Call after resolving
        # the model to a catalog Task (unknown model -> the gateway's 404 first).

    estimate = estimate_chat(prompt_tokens, max_tokens, n)   # or estimate_image(n, steps),
                                                             #    estimate_embedding(tokens)
    decision = await billing.limiter.admit(ctx, estimate.tokens)      # limiter may be None
        # -> RateDecision; decision.headers() = x-ratelimit-{limit,remaining,reset}-{requests,
        #    tokens}: put them on EVERY response of this request (success and error).
        # raises RateLimitExceeded (429 rate_limit_exceeded) whose .headers carry Retry-After,
        #    retry-after-ms and the x-ratelimit-* headers; code "request_too_large" (with
        #    x-should-retry: false) when the estimate alone exceeds the key's TPM.
    hold = await billing.service.hold(ctx, task, estimate, request_id=request_id)
        # -> Hold (amount, balance after the hold, expires_at). One conditional debit; never
        #    overdraws, whatever the concurrency.
        # raises InsufficientCredits (402 insufficient_quota, x-should-retry: false),
        #        SpendCapExceeded (402 spend_cap_exceeded, x-should-retry: false),
        #        AccountSuspended (403).
        # On 402/403 here, give the TPM estimate back: limiter.correct(ctx, estimate.tokens, 0).

    ... dispatch to miners ...

    # The response (or the part of it the client received) is done:
    settlement = await billing.service.settle(hold, Usage(input_tokens=..., output_tokens=...,
                                              images=..., steps=...), miner_hotkey=hk,
                                              latency_ms=ms, status="ok")
        # status: "ok", "client_disconnected", "upstream_error" (mid-stream failure), ...
        # Charges min(cost(delivered usage at the hold's prices), hold.amount), releases the
        # rest, writes ONE usage record and the daily aggregate, all in one transaction.
        # Idempotent per hold (a second call returns the first result, replayed=True).
        # settlement.headers() = {"x-sn19-cost", "x-sn19-balance"} (decimal credits).
    await billing.limiter.correct(ctx, estimate.tokens, usage.tokens)

    # Nothing was delivered (no miner, every attempt failed before the first byte):
    await billing.service.release(hold, reason="no_capacity", status="no_capacity")
        # Charges nothing, writes the usage record (cost 0). Answer 5xx ONLY after this, so the
        # SDKs' automatic retries never pay twice.

    For streams the headers leave before the cost is known: send hold.headers()
    (x-sn19-hold, x-sn19-balance after the hold) and the cost in the final usage chunk.

Holds expire (``task.timeouts.total_s + billing.hold_grace_s``); ``run_sweeper`` releases
those left by a crashed gateway (status ``expired``, nothing charged).

HTTP endpoints (framework-free; mount them in the gateway): ``billing.api`` -> ``BillingApi``
with wire Structs in ``billing.schemas``. Admin operations (CLI, dashboard): ``billing.keys``
(``KeyService``), ``billing.accounts`` (``AccountService``: with ``statement()``, the ledger
as people read it), ``billing.prices`` (``PriceBook``).

Transactions: every money operation above is ONE database transaction opened by the service
itself with ``Database.transaction()`` (commit on success, rollback on any exception); nothing
in billing calls ``commit()``. See ``core.db.engine`` and docs/billing.md.
"""

from __future__ import annotations

from billing.accounts import AccountInfo, AccountService, Balance, LedgerLine
from billing.api import BillingApi
from billing.auth import KeyAuthenticator, KeyCache
from billing.components import Billing, checkout_urls
from billing.errors import (
    AccountSuspended,
    BillingNotFound,
    BillingUnavailable,
    InsufficientCredits,
    InvalidApiKey,
    ModelNotAllowed,
    RateLimitExceeded,
    SpendCapExceeded,
    WebhookRejected,
)
from billing.holds import Hold, Settlement
from billing.key_service import KEEP, CreatedKey, KeyInfo, KeyService
from billing.keys import KeyContext, KeyHasher
from billing.ledger import VerifyReport
from billing.money import MICRO, format_credits, parse_credits
from billing.prices import PriceBook, PriceListing
from billing.pricing import Usage, cost, estimate_chat, estimate_embedding, estimate_image
from billing.provenance import ReceiptLog, ServedRequest, receipt_fields
from billing.ratelimit import RateDecision, RateLimiter
from billing.service import BillingService
from billing.statement import LINE_KINDS, StatementFilter, StatementLine
from billing.stripe_gateway import CheckoutSession, StripeClientGateway, StripeGateway
from billing.sweeper import run_sweeper
from billing.webhooks import StripeBilling, WebhookResult

__all__ = [
    "KEEP",
    "LINE_KINDS",
    "MICRO",
    "AccountInfo",
    "AccountService",
    "AccountSuspended",
    "Balance",
    "Billing",
    "BillingApi",
    "BillingNotFound",
    "BillingService",
    "BillingUnavailable",
    "CheckoutSession",
    "CreatedKey",
    "Hold",
    "InsufficientCredits",
    "InvalidApiKey",
    "KeyAuthenticator",
    "KeyCache",
    "KeyContext",
    "KeyHasher",
    "KeyInfo",
    "KeyService",
    "LedgerLine",
    "ModelNotAllowed",
    "PriceBook",
    "PriceListing",
    "RateDecision",
    "RateLimitExceeded",
    "RateLimiter",
    "ReceiptLog",
    "ServedRequest",
    "Settlement",
    "SpendCapExceeded",
    "StatementFilter",
    "StatementLine",
    "StripeBilling",
    "StripeClientGateway",
    "StripeGateway",
    "Usage",
    "VerifyReport",
    "WebhookRejected",
    "WebhookResult",
    "checkout_urls",
    "cost",
    "estimate_chat",
    "estimate_embedding",
    "estimate_image",
    "format_credits",
    "parse_credits",
    "receipt_fields",
    "run_sweeper",
]
