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
    admission = await billing.access.admit(ctx, task, estimate, request_id=request_id)
        # estimate: estimate_chat(prompt_tokens, max_tokens, n), estimate_image(n, steps) or
        # estimate_embedding(tokens). The key's allowlist (ModelNotAllowed, 403), its RPM/TPM
        # windows (RateLimitExceeded, 429 with Retry-After and x-ratelimit-*; "at most the
        # limit in any 60 s": billing.ratelimit), the hold (InsufficientCredits /
        # SpendCapExceeded, 402 with x-should-retry: false; LedgerUnavailable, 503, when the
        # database fails). admission.headers go on EVERY response of this request.

    ... dispatch to miners ...

    headers = await billing.access.settle(admission, delivered, Delivery.OK,
                                          miner_hotkey=hk, latency_ms=ms)
        # Exactly once per admission. OK / PARTIAL / CANCELLED charge the delivered usage
        # (never more than the hold; the write runs in the background and the headers
        # x-sn19-cost / x-sn19-balance are computed from the hold); FAILED (or nothing
        # delivered) releases the hold and is awaited: answer a 5xx only after it, so the SDKs'
        # automatic retries never pay twice. The TPM window is corrected to the real usage.

Underneath, ``billing.service`` (``BillingService.hold`` / ``settle`` / ``release``, each one
transaction, idempotent per hold) and ``billing.ratelimit`` (``RateLimiter``) do the work;
the CLI and the dashboard use them directly.

For streams the headers leave before the cost is known: the admission's headers carry
``x-sn19-hold`` and ``x-sn19-balance`` after the hold, and the cost is in the final usage chunk.

Holds expire (``task.timeouts.total_s + billing.hold_grace_s``); ``run_sweeper`` releases
those left by a crashed gateway (status ``expired``, nothing charged).

HTTP endpoints (framework-free; mount them in the gateway): ``billing.api`` -> ``BillingApi``
with wire Structs in ``billing.schemas``. Admin operations (CLI, dashboard): ``billing.keys.store``
(``KeyService``), ``billing.accounts`` (``AccountService``: with ``statement()``, the ledger
as people read it), ``billing.price_book`` (``PriceBook``).

Transactions: every money operation above is ONE database transaction opened by the service
itself with ``Database.transaction()`` (commit on success, rollback on any exception); nothing
in billing calls ``commit()``. See ``core.db.engine`` and docs/billing.md.
"""

from __future__ import annotations

from billing.access import Access, Admission, BilledAccess, Delivery, OpenAccess
from billing.accounts import AccountInfo, AccountService, Balance, LedgerLine
from billing.api import BillingApi
from billing.components import Billing, checkout_urls, running_billing
from billing.costs import Usage, cost, estimate_chat, estimate_embedding, estimate_image
from billing.errors import (
    AccountSuspended,
    BillingNotEnabled,
    BillingNotFound,
    BillingUnavailable,
    InsufficientCredits,
    InvalidApiKey,
    ModelNotAllowed,
    PaymentsNotEnabled,
    RateLimitExceeded,
    SpendCapExceeded,
    WebhookRejected,
)
from billing.holds import Hold, Settlement
from billing.keys.auth import KeyAuthenticator, KeyCache
from billing.keys.service import KEEP, CreatedKey, KeyInfo, KeyService
from billing.keys.store import KeyContext, KeyHasher
from billing.ledger import VerifyReport
from billing.money import MICRO, format_credits, parse_credits
from billing.payments.stripe import CheckoutSession, StripeClientGateway, StripeGateway
from billing.payments.webhooks import StripeBilling, WebhookResult
from billing.price_book import PriceBook, PriceListing
from billing.provenance import ReceiptLog, ServedRequest, receipt_fields
from billing.ratelimit import RateDecision, RateLimiter
from billing.service import BillingService
from billing.statement import LINE_KINDS, StatementFilter, StatementLine
from billing.sweeper import run_sweeper

__all__ = [
    "KEEP",
    "LINE_KINDS",
    "MICRO",
    "Access",
    "AccountInfo",
    "AccountService",
    "AccountSuspended",
    "Admission",
    "Balance",
    "BilledAccess",
    "Billing",
    "BillingApi",
    "BillingNotEnabled",
    "BillingNotFound",
    "BillingService",
    "BillingUnavailable",
    "CheckoutSession",
    "CreatedKey",
    "Delivery",
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
    "OpenAccess",
    "PaymentsNotEnabled",
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
    "running_billing",
]
