"""The Stripe boundary: an interface, and the adapter over the official library.

``StripeGateway`` is all billing needs from Stripe: create a Checkout Session, and turn a
webhook delivery into a verified event (a plain dict). ``StripeClientGateway`` implements it
with ``stripe.StripeClient`` (async calls) and ``StripeClient.construct_event`` (HMAC-SHA256
signature, ``t=…,v1=…`` header, timestamp tolerance). Tests point ``api_base`` at a local HTTP
stand-in for Stripe's API and sign payloads themselves, so the real library runs end to end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from billing.errors import BillingUnavailable, WebhookRejected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckoutRequestSpec:
    account_id: int
    # Whole credits bought, and what they cost in the currency's smallest unit.
    credits: int
    unit_amount_cents: int
    currency: str
    success_url: str
    cancel_url: str
    customer_email: str | None = None
    product_name: str = "sn19 API credits"


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class StripeGateway(Protocol):
    async def create_checkout_session(self, spec: CheckoutRequestSpec) -> CheckoutSession: ...

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event as a dict, or ``WebhookRejected`` (400) for a bad or stale signature."""
        ...


class StripeClientGateway:
    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str = "",
        tolerance_s: int = 300,
        max_network_retries: int = 2,
    ) -> None:
        import stripe  # ~0.5 s to import: only processes that bill with Stripe pay for it

        self._stripe = stripe
        options: dict[str, Any] = {"max_network_retries": max_network_retries}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(api_key, **options)
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance_s

    async def create_checkout_session(self, spec: CheckoutRequestSpec) -> CheckoutSession:
        micro = str(spec.credits * 1_000_000)
        metadata = {"account_id": str(spec.account_id), "credits": micro}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": spec.credits,
                    "price_data": {
                        "currency": spec.currency,
                        "unit_amount": spec.unit_amount_cents,
                        "product_data": {"name": spec.product_name},
                    },
                }
            ],
            "success_url": spec.success_url,
            "cancel_url": spec.cancel_url,
            "client_reference_id": str(spec.account_id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        if spec.customer_email:
            params["customer_email"] = spec.customer_email
        try:
            session = await self._client.v1.checkout.sessions.create_async(params=params)
        except self._stripe.StripeError as exc:
            log.error("Stripe: creating a Checkout Session failed: %s", exc)
            raise BillingUnavailable(
                "The payment provider is unavailable; try again later."
            ) from exc
        return CheckoutSession(id=str(session.id), url=str(session.url))

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        if not signature_header:
            raise WebhookRejected("missing Stripe-Signature header")
        try:
            self._client.construct_event(
                payload, signature_header, self._webhook_secret, self._tolerance
            )
        except self._stripe.SignatureVerificationError as exc:
            raise WebhookRejected(f"invalid Stripe signature: {exc.user_message or exc}") from None
        except ValueError as exc:
            raise WebhookRejected(f"invalid webhook payload: {exc}") from None
        # The signature covers these exact bytes: parse them as plain data.
        event = json.loads(payload)
        if not isinstance(event, Mapping) or not isinstance(event.get("id"), str):
            raise WebhookRejected("invalid webhook payload: not an event")
        return dict(event)
