"""The API-key form shared by customers (their own keys) and operators (any key).

Customers set the name, the model allowlist, spend caps and expiry; operators also set the
per-key RPM and TPM limits (which protect the validator). Empty limits and caps mean none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from litestar.datastructures import FormMultiDict

from billing import KEEP, KeyInfo
from web.forms import credits, expiry, models, text, whole


@dataclass(frozen=True)
class KeyFields:
    name: str
    allowed_models: tuple[str, ...] | None
    daily_spend_cap: int | None
    monthly_spend_cap: int | None
    expires_at: datetime | None
    # Operators only; KEEP when the form had no such fields (customers).
    rpm_limit: Any = KEEP
    tpm_limit: Any = KEEP

    def as_kwargs(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "allowed_models": self.allowed_models,
            "daily_spend_cap": self.daily_spend_cap,
            "monthly_spend_cap": self.monthly_spend_cap,
            "expires_at": self.expires_at,
        }
        if self.rpm_limit is not KEEP:
            values["rpm_limit"] = self.rpm_limit
        if self.tpm_limit is not KEEP:
            values["tpm_limit"] = self.tpm_limit
        return values


def parse_key_form(
    form: FormMultiDict, known_models: list[str], *, limits: bool, today: date
) -> KeyFields:
    return KeyFields(
        name=text(form, "name", required=True, max_length=200),
        allowed_models=models(form, known_models),
        daily_spend_cap=credits(form, "daily_cap"),
        monthly_spend_cap=credits(form, "monthly_cap"),
        expires_at=expiry(form, "expires", today=today),
        rpm_limit=whole(form, "rpm") if limits else KEEP,
        tpm_limit=whole(form, "tpm") if limits else KEEP,
    )


def key_status(key: KeyInfo, now: datetime) -> str:
    if key.revoked:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"
