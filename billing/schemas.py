"""Wire types of the billing endpoints (``/v1/billing/*``), framework-free msgspec Structs.

Money on the wire is given twice: as a decimal string of credits (``"12.500000"``, for people
and for clients that must not round through floats) and as integer micro-credits (``*_micro``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from msgspec import Meta


class CheckoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/billing/checkout``: buy whole credits (between the configured bounds)."""

    credits: Annotated[int, Meta(ge=1)]


class CheckoutResponse(msgspec.Struct):
    id: str
    url: str
    credits: int
    # What the customer pays, in the currency's smallest unit (cents).
    amount: int
    currency: str
    object: Literal["billing.checkout_session"] = "billing.checkout_session"


class WebhookResponse(msgspec.Struct):
    """``POST /v1/billing/stripe/webhook``: 200 for processed, ignored and duplicate events."""

    received: bool
    event_id: str
    status: str


class BalanceResponse(msgspec.Struct):
    """``GET /v1/billing/balance``."""

    account_id: int
    # Usable by new requests (held credits already taken out).
    available: str
    available_micro: int
    # Reserved by requests in flight.
    held: str
    held_micro: int
    object: Literal["billing.balance"] = "billing.balance"


class UsageQuery(msgspec.Struct, forbid_unknown_fields=True):
    """``GET /v1/billing/usage`` query: UTC days ``start``..``end`` inclusive (default: the last
    30 days), optionally one key or one model; pages of ``limit`` rows, newest day first."""

    start: date | None = None
    end: date | None = None
    key_id: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None = None  # a BIGINT id
    model: str | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    cursor: str | None = None


class UsageBucket(msgspec.Struct):
    date: date
    model: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    images: int
    steps: int
    cost: str
    cost_micro: int


class UsageResponse(msgspec.Struct):
    data: list[UsageBucket]
    has_more: bool
    next_cursor: str | None = None
    object: Literal["list"] = "list"
