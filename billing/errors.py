"""Billing's errors: subclasses of the core hierarchy, so the gateway's one renderer handles them.

AuthenticationFailed (401 invalid_api_key)
└── InvalidApiKey                  unknown, malformed, revoked or expired key
PermissionDenied (403)
├── AccountSuspended               the key's account is suspended
└── ModelNotAllowed                the model is outside the key's allowlist
InsufficientQuota (402 insufficient_quota, x-should-retry: false)
├── InsufficientCredits            the hold does not fit the balance
└── SpendCapExceeded               the hold would pass the key's daily or monthly cap
RateLimited (429, Retry-After + x-ratelimit-*)
└── RateLimitExceeded              RPM or TPM window full (or the request exceeds the TPM)
InvalidRequest (400)
└── WebhookRejected                bad or stale Stripe signature, unparseable payload
NotFound (404)
├── BillingNotFound                unknown account / key / hold in an admin call
└── BillingNotEnabled              billing is off on this validator (billing_not_enabled)
    └── PaymentsNotEnabled         Stripe is not configured (payments_not_enabled)
AppError (503 billing_unavailable)
├── BillingUnavailable             the payment provider failed (retry later)
└── LedgerUnavailable              the database could not take a hold (retry shortly)
"""

from __future__ import annotations

from core.errors import (
    AppError,
    AuthenticationFailed,
    InsufficientQuota,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
)

NO_RETRY = {"x-should-retry": "false"}


class InvalidApiKey(AuthenticationFailed):
    def __init__(self, message: str = "Incorrect API key provided.") -> None:
        super().__init__(message)


class AccountSuspended(PermissionDenied):
    default_code = "account_suspended"

    def __init__(self, message: str = "This API key's account is suspended.") -> None:
        super().__init__(message)


class ModelNotAllowed(PermissionDenied):
    default_code = "model_not_allowed"

    def __init__(self, model: str) -> None:
        super().__init__(f"This API key is not allowed to use the model '{model}'.", param="model")


class InsufficientCredits(InsufficientQuota):
    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers={**NO_RETRY, **(headers or {})})


class SpendCapExceeded(InsufficientQuota):
    default_code = "spend_cap_exceeded"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=dict(NO_RETRY))


class RateLimitExceeded(RateLimited):
    pass


class WebhookRejected(InvalidRequest):
    default_code = "invalid_webhook"


class BillingNotFound(NotFound):
    pass


class BillingNotEnabled(NotFound):
    """A part of billing this validator does not run: permanent, so a 404 (not a 503)."""

    default_code = "billing_not_enabled"


class PaymentsNotEnabled(BillingNotEnabled):
    default_code = "payments_not_enabled"


class BillingUnavailable(AppError):
    status_code = 503
    openai_type = "server_error"
    default_code = "billing_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=dict(NO_RETRY))


class LedgerUnavailable(AppError):
    """The database could not take the hold: nothing was charged, the client may retry."""

    status_code = 503
    openai_type = "server_error"
    default_code = "billing_unavailable"
