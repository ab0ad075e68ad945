"""Stripe top-ups: Checkout Sessions, and webhook events applied exactly once.

``handle_webhook`` verifies the signature, then in ONE transaction inserts the event row
(primary key = Stripe's event id, ``ON CONFLICT DO NOTHING``) and applies its effect (ledger
row, payment row). A redelivered event finds its row and changes nothing; two deliveries racing
each other serialise on the primary key (PostgreSQL makes the second insert wait for the first
transaction and then skip; SQLite has one writer at a time), so exactly one of them credits.
A second layer guards each purchase: ``stripe_payments`` is keyed by Checkout Session, so
``checkout.session.completed`` and ``checkout.session.async_payment_succeeded`` for the same
session credit it once.

Events:

- ``checkout.session.completed`` / ``checkout.session.async_payment_succeeded`` with
  ``payment_status == "paid"``: credit ``metadata.credits`` micro-credits to
  ``metadata.account_id`` (both set by ``create_checkout`` on our side).
- ``charge.refunded`` (cumulative ``amount_refunded``) and ``refund.created`` (one refund):
  debit the credits bought in proportion to the amount refunded so far (rounded up, never more
  than bought). Refunds may leave a negative balance (a debt that blocks new holds).
- anything else: stored as ``ignored``.

Statuses stored (and answered): ``processed`` (applied, possibly with no further effect, e.g. a
refund already counted), ``ignored`` (not applicable: unpaid session, unhandled type, or a
problem logged at ERROR: unknown account, missing metadata, unknown payment), ``duplicate``
(answered only: the event id was seen before). Every verified event is answered 200 so Stripe
does not retry it for days; database errors roll the transaction back and answer 5xx, so
Stripe retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.errors import AccountSuspended, BillingNotFound
from billing.payments.stripe import CheckoutRequestSpec, CheckoutSession, StripeGateway
from core.db.base import utcnow
from core.db.dialect import insert_ignore, rowcount
from core.db.engine import Database
from core.db.tables.billing import Account, StripeEvent, StripePayment

log = logging.getLogger(__name__)

CREDIT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUND_EVENTS = ("charge.refunded", "refund.created")


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    type: str
    # processed | ignored | duplicate
    status: str
    # Signed micro-credits moved.
    credits: int = 0
    detail: str = ""


@dataclass
class _Outcome:
    status: str = "ignored"
    detail: str = ""
    credits: int = 0
    account_id: int | None = None
    object_id: str | None = None
    payment_intent: str | None = None
    amount_cents: int | None = None
    # True when the event should have applied but could not (operators must look).
    problem: bool = False


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class StripeBilling:
    def __init__(
        self,
        db: Database,
        gateway: StripeGateway,
        *,
        currency: str = "usd",
        credit_price_cents: int = 100,
        min_credits: int = 5,
        max_credits: int = 10_000,
        success_url: str,
        cancel_url: str,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._currency = currency
        self._price = credit_price_cents
        self._min = min_credits
        self._max = max_credits
        self._success_url = success_url
        self._cancel_url = cancel_url

    @property
    def limits(self) -> tuple[int, int]:
        return self._min, self._max

    async def create_checkout(self, account_id: int, credits: int) -> CheckoutSession:
        """A Checkout Session buying ``credits`` whole credits for the account."""
        if not self._min <= credits <= self._max:
            raise ValueError(f"credits must be between {self._min} and {self._max}")
        async with self._db.read() as session:
            account = await session.get(Account, account_id)
            if account is None:
                raise BillingNotFound(f"no account {account_id}")
            email = account.email
        if account.status != "active":
            raise AccountSuspended("This account is suspended.")
        return await self._gateway.create_checkout_session(
            CheckoutRequestSpec(
                account_id=account_id,
                credits=credits,
                unit_amount_cents=self._price,
                currency=self._currency,
                success_url=self._success_url,
                cancel_url=self._cancel_url,
                customer_email=email,
            )
        )

    async def handle_webhook(self, payload: bytes, signature_header: str | None) -> WebhookResult:
        event = self._gateway.verify_webhook(payload, signature_header)
        event_id, event_type = str(event["id"]), str(event.get("type", ""))
        async with self._db.transaction() as session:
            row = {
                "id": event_id,
                "type": event_type[:100],
                "livemode": bool(event.get("livemode", False)),
                "status": "processing",
                "detail": "",
                "credits": 0,
                "payload": payload.decode("utf-8", "replace"),
                "received_at": utcnow(),
            }
            inserted = await session.execute(
                insert_ignore(self._db.dialect, StripeEvent, row, ["id"])
            )
            if rowcount(inserted) == 0:
                return WebhookResult(event_id, event_type, "duplicate")
            obj = event.get("data", {}).get("object", {})
            outcome = await self._apply(
                session, event_id, event_type, obj if isinstance(obj, dict) else {}
            )
            await session.execute(
                update(StripeEvent)
                .where(StripeEvent.id == event_id)
                .values(
                    status=outcome.status,
                    detail=outcome.detail[:500],
                    credits=outcome.credits,
                    account_id=outcome.account_id,
                    object_id=outcome.object_id,
                    payment_intent=outcome.payment_intent,
                    amount_cents=outcome.amount_cents,
                )
            )
        if outcome.problem:
            log.error("Stripe event %s (%s) not applied: %s", event_id, event_type, outcome.detail)
        else:
            log.info(
                "Stripe event %s (%s): %s %s", event_id, event_type, outcome.status, outcome.detail
            )
        return WebhookResult(event_id, event_type, outcome.status, outcome.credits, outcome.detail)

    async def _apply(
        self, session: AsyncSession, event_id: str, event_type: str, obj: dict[str, Any]
    ) -> _Outcome:
        if event_type in CREDIT_EVENTS:
            return await self._credit(session, event_id, obj)
        if event_type == "charge.refunded":
            intent = obj.get("payment_intent")
            return await self._refund(
                session, event_id, str(obj.get("id", "")), intent, _int(obj.get("amount_refunded"))
            )
        if event_type == "refund.created":
            return await self._refund_created(session, event_id, obj)
        return _Outcome(detail="event type not handled")

    async def _credit(self, session: AsyncSession, event_id: str, obj: dict[str, Any]) -> _Outcome:
        checkout_id = str(obj.get("id", ""))
        metadata = obj.get("metadata") or {}
        account_id = _int(metadata.get("account_id"))
        credits = _int(metadata.get("credits"))
        intent = obj.get("payment_intent")
        outcome = _Outcome(
            account_id=None,
            object_id=checkout_id,
            payment_intent=intent if isinstance(intent, str) else None,
            amount_cents=_int(obj.get("amount_total")),
        )
        if obj.get("payment_status") != "paid":
            outcome.detail = f"payment_status is {obj.get('payment_status')!r}, not 'paid'"
            return outcome
        if account_id is None or credits is None or credits <= 0 or not checkout_id:
            outcome.detail = "missing or invalid metadata.account_id / metadata.credits"
            outcome.problem = True
            return outcome
        if await session.get(Account, account_id) is None:
            outcome.detail = f"no account {account_id}"
            outcome.problem = True
            return outcome
        outcome.account_id = account_id
        payment = {
            "checkout_session_id": checkout_id,
            "payment_intent": outcome.payment_intent,
            "account_id": account_id,
            "amount_cents": outcome.amount_cents or 0,
            "currency": str(obj.get("currency") or self._currency)[:8],
            "credits": credits,
            "refunded_cents": 0,
            "refunded_credits": 0,
            "event_id": event_id,
            "created_at": utcnow(),
        }
        inserted = await session.execute(
            insert_ignore(self._db.dialect, StripePayment, payment, ["checkout_session_id"])
        )
        if rowcount(inserted) == 0:
            outcome.status, outcome.detail = "processed", f"{checkout_id} was already credited"
            return outcome
        entry = ledger.Entry(
            "topup", credits, "stripe", f"Stripe Checkout {checkout_id}", reference=event_id
        )
        await ledger.post(session, account_id, entry)
        outcome.status, outcome.credits = "processed", credits
        return outcome

    async def _refund_created(
        self, session: AsyncSession, event_id: str, obj: dict[str, Any]
    ) -> _Outcome:
        refund_id, intent, amount = (
            str(obj.get("id", "")),
            obj.get("payment_intent"),
            _int(obj.get("amount")),
        )
        if (
            obj.get("status") in ("failed", "canceled")
            or amount is None
            or not isinstance(intent, str)
        ):
            return _Outcome(detail="refund not applicable", object_id=refund_id)
        earlier = (
            await session.execute(
                select(func.coalesce(func.sum(StripeEvent.amount_cents), 0)).where(
                    StripeEvent.type == "refund.created",
                    StripeEvent.payment_intent == intent,
                    StripeEvent.status == "processed",
                    StripeEvent.object_id != refund_id,
                )
            )
        ).scalar_one()
        outcome = await self._refund(
            session, event_id, refund_id, intent, int(earlier or 0) + amount
        )
        outcome.amount_cents = amount
        if outcome.status == "ignored" and outcome.account_id is not None:
            # Counted toward later refund.created events of the same payment all the same.
            outcome.status = "processed"
        return outcome

    async def _refund(
        self,
        session: AsyncSession,
        event_id: str,
        object_id: str,
        intent: Any,
        refunded_cents: int | None,
    ) -> _Outcome:
        outcome = _Outcome(
            object_id=object_id, payment_intent=intent if isinstance(intent, str) else None
        )
        if outcome.payment_intent is None or refunded_cents is None:
            outcome.detail, outcome.problem = "no payment_intent or amount on the refund", True
            return outcome
        payment = (
            await session.execute(
                select(StripePayment)
                .where(StripePayment.payment_intent == outcome.payment_intent)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if payment is None:
            outcome.detail = f"no credited payment for {outcome.payment_intent}"
            outcome.problem = True
            return outcome
        outcome.account_id = payment.account_id
        target_cents = max(payment.refunded_cents, min(refunded_cents, payment.amount_cents))
        if payment.amount_cents <= 0:
            target_credits = payment.credits if target_cents > 0 else 0
        else:
            target_credits = min(
                payment.credits, _ceil_div(payment.credits * target_cents, payment.amount_cents)
            )
        delta = target_credits - payment.refunded_credits
        payment.refunded_cents = target_cents
        if delta <= 0:
            outcome.status, outcome.detail = "processed", "refund already accounted for"
            return outcome
        payment.refunded_credits = target_credits
        reason = f"Stripe refund of {target_cents} of {payment.amount_cents} ({payment.currency})"
        await ledger.post(
            session,
            payment.account_id,
            ledger.Entry("refund", -delta, "stripe", reason, reference=event_id),
        )
        outcome.status, outcome.credits = "processed", -delta
        return outcome
