"""Reading HTML form fields into typed values; ``FormError`` names the field and the problem,
and the page shows it next to the form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from litestar.datastructures import FormMultiDict

from billing import parse_credits


class FormError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def text(form: FormMultiDict, name: str, *, required: bool = False, max_length: int = 200) -> str:
    value = str(form.get(name) or "").strip()
    if required and not value:
        raise FormError(name, "This field is required.")
    if len(value) > max_length:
        raise FormError(name, f"Use at most {max_length} characters.")
    return value


def credits(
    form: FormMultiDict, name: str, *, required: bool = False, allow_negative: bool = False
) -> int | None:
    """Decimal credits (at most 6 decimals) -> micro-credits; empty -> None."""
    raw = text(form, name, required=required, max_length=40)
    if not raw:
        return None
    try:
        return parse_credits(raw.replace(",", ""), allow_negative=allow_negative)
    except ValueError:
        raise FormError(name, "Enter an amount of credits, e.g. 25 or 0.5.") from None


def whole(form: FormMultiDict, name: str, *, minimum: int = 0, maximum: int = 10**12) -> int | None:
    raw = text(form, name, max_length=20).replace(",", "").replace("_", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise FormError(name, "Enter a whole number.")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise FormError(name, f"Enter a number between {minimum:,} and {maximum:,}.")
    return value


def choice(form: FormMultiDict, name: str, options: Sequence[str], default: str) -> str:
    value = str(form.get(name) or default)
    if value not in options:
        raise FormError(name, f"Choose one of: {', '.join(options)}.")
    return value


def checked(form: FormMultiDict, name: str) -> bool:
    return str(form.get(name) or "") in ("on", "1", "true", "yes")


def models(form: FormMultiDict, known: Sequence[str]) -> tuple[str, ...] | None:
    """The allowlist: None (every model) unless "only these" is chosen with some models."""
    if str(form.get("model_scope") or "all") == "all":
        return None
    chosen = [str(value) for value in form.getall("models", [])]
    unknown = [m for m in chosen if m not in known]
    if unknown:
        raise FormError("models", f"Unknown model: {unknown[0]}.")
    if not chosen:
        raise FormError("models", "Pick at least one model, or allow every model.")
    return tuple(dict.fromkeys(chosen))


def expiry(form: FormMultiDict, name: str, *, today: date) -> datetime | None:
    """A date (YYYY-MM-DD): the key works until the end of that UTC day."""
    raw = text(form, name, max_length=10)
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise FormError(name, "Enter a date as YYYY-MM-DD.") from None
    if day < today:
        raise FormError(name, "The expiry date is in the past.")
    return datetime.combine(day, time.max, tzinfo=UTC)
