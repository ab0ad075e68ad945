"""What a check decides: a quality in [0, 1], the rule behind any zero, and the numbers.

``code`` is a short, stable name of the deciding rule (a metrics label and what dashboards group
by; empty when every check passed); ``reason`` is the sentence an operator or a miner reads;
``evidence`` holds the statistics, distances and thresholds the decision was made from (JSON
types only, so it can be stored as is).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

CHECKER_VERSION = "1"

# Codes of the rules (docs/checker.md lists what each one means).
BAD_JOB = "bad_job"
BAD_REQUEST = "bad_request"
MISSING_RESPONSE = "missing_response"
DEAD_LETTER = "dead_letter"


class CheckOutcome(msgspec.Struct):
    quality: float
    code: str = ""
    reason: str = ""
    evidence: dict[str, Any] = {}
    # Work units of the result (tokens, or steps for images) for the speed metric.
    work: float = 0.0
    # Text with temperature > 0: log of this job's e-value for each sequential detector
    # ("greedy", "padding"); the worker folds them into the miner's running statistics.
    sequential: dict[str, float] = {}


def passed(quality: float, evidence: dict[str, Any], *, work: float = 0.0) -> CheckOutcome:
    return CheckOutcome(quality=min(1.0, max(0.0, quality)), evidence=clean(evidence), work=work)


def failed(
    code: str, reason: str, evidence: dict[str, Any] | None = None, *, work: float = 0.0
) -> CheckOutcome:
    return CheckOutcome(
        quality=0.0, code=code, reason=reason, evidence=clean(evidence or {}), work=work
    )


def clean(value: Any) -> Any:
    """JSON-safe evidence: floats rounded to 6 significant digits, non-finite floats as
    strings, tuples as lists, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(key): clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return clean(value.item())
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return float(f"{value:.6g}")
    return str(value)
