"""The billing endpoints as framework-free handlers: wire Structs in, wire Structs out, core
errors raised. The gateway (and later the dashboard) mounts them and supplies the account:

    POST /v1/billing/checkout        -> BillingApi.checkout(account_id, CheckoutRequest)
    POST /v1/billing/stripe/webhook  -> BillingApi.stripe_webhook(raw body, Stripe-Signature)
    GET  /v1/billing/usage           -> BillingApi.usage(account_id, UsageQuery)
    GET  /v1/billing/balance         -> BillingApi.balance(account_id)

``account_id`` comes from the caller's authentication (``KeyContext.account_id`` for an API
key, the dashboard session later). The webhook is unauthenticated: its Stripe signature is the
authentication, so it must get the raw request body, byte for byte.
"""

from __future__ import annotations

from billing.accounts import AccountService
from billing.errors import PaymentsNotEnabled
from billing.money import format_credits
from billing.payments.webhooks import StripeBilling
from billing.schemas import (
    BalanceResponse,
    CheckoutRequest,
    CheckoutResponse,
    UsageBucket,
    UsageQuery,
    UsageResponse,
    WebhookResponse,
)
from billing.usage import UsageService
from core.errors import InvalidRequest


class BillingApi:
    def __init__(
        self,
        accounts: AccountService,
        usage: UsageService,
        stripe: StripeBilling | None,
        *,
        credit_price_cents: int = 100,
        currency: str = "usd",
    ) -> None:
        self._accounts = accounts
        self._usage = usage
        self._stripe = stripe
        self._price = credit_price_cents
        self._currency = currency

    def _require_stripe(self) -> StripeBilling:
        if self._stripe is None:
            raise PaymentsNotEnabled("Credit purchases are not enabled on this validator.")
        return self._stripe

    async def checkout(self, account_id: int, body: CheckoutRequest) -> CheckoutResponse:
        """400 outside the allowed credit range; 404 when Stripe is not configured, 503 when it
        fails."""
        stripe = self._require_stripe()
        low, high = stripe.limits
        if not low <= body.credits <= high:
            raise InvalidRequest(
                f"credits must be between {low} and {high}", param="credits", code="invalid_value"
            )
        session = await stripe.create_checkout(account_id, body.credits)
        return CheckoutResponse(
            id=session.id,
            url=session.url,
            credits=body.credits,
            amount=body.credits * self._price,
            currency=self._currency,
        )

    async def stripe_webhook(self, payload: bytes, signature: str | None) -> WebhookResponse:
        """400 (``WebhookRejected``) for a bad or stale signature; 200 otherwise."""
        result = await self._require_stripe().handle_webhook(payload, signature)
        return WebhookResponse(received=True, event_id=result.event_id, status=result.status)

    async def balance(self, account_id: int) -> BalanceResponse:
        balance = await self._accounts.balance(account_id)
        return BalanceResponse(
            account_id=account_id,
            available=format_credits(balance.available),
            available_micro=balance.available,
            held=format_credits(balance.held),
            held_micro=balance.held,
        )

    async def usage(self, account_id: int, query: UsageQuery) -> UsageResponse:
        if query.start and query.end and query.start > query.end:
            raise InvalidRequest("start must not be after end", param="start")
        rows, cursor = await self._usage.by_day(
            account_id,
            start=query.start,
            end=query.end,
            key_id=query.key_id,
            task=query.model,
            limit=query.limit,
            cursor=query.cursor,
        )
        return UsageResponse(
            data=[
                UsageBucket(
                    date=row.day,
                    model=row.task,
                    requests=row.requests,
                    errors=row.errors,
                    input_tokens=row.input_tokens,
                    output_tokens=row.output_tokens,
                    images=row.images,
                    steps=row.steps,
                    cost=format_credits(row.cost),
                    cost_micro=row.cost,
                )
                for row in rows
            ],
            has_more=cursor is not None,
            next_cursor=cursor,
        )
