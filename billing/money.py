"""Credits ⇄ micro-credits. Money is integer micro-credits everywhere; decimals appear only at
the edges (the CLI, headers, the dashboard) and are converted exactly, never through floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO = 1_000_000


def parse_credits(text: str, *, allow_negative: bool = False) -> int:
    """``"1.5"`` → ``1_500_000``. At most 6 decimals; anything inexact is rejected."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"not a credit amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a credit amount: {text!r}")
    micro = value * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"{text!r}: credits have at most 6 decimals")
    if micro < 0 and not allow_negative:
        raise ValueError(f"{text!r}: must not be negative")
    return int(micro)


def format_credits(micro: int) -> str:
    """``1_500_000`` → ``"1.500000"``; always six decimals so columns line up."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    return f"{sign}{whole}.{frac:06d}"
