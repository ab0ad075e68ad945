"""The reported-logprob rule of the text check (SPEC §5: reported logprobs match the reference).

Every reported (raw, temperature-1) logprob must lie within the honest numerical tolerance of
the reference's at its position::

    |log p_miner − log p_ref| ≤ logprob_tolerance
                                + logprob_logit_tolerance · (1 − min(p_miner, p_ref))

An honest machine's error comes from its logits: a logit error δ moves ``log p`` of a token by
about ``δ · (1 − p)``, so a near-certain token's logprob is exact up to rounding
(``logprob_tolerance``) and an unlikely one's may be off by up to the logit error
(``logprob_logit_tolerance``). Both are measured by ``benchmarks/checker_tolerance.py`` (the dev
model in bfloat16, float16 and on another thread count against float32; docs/checker.md,
"Numerical tolerance"). The job fails at the first choice with a position beyond it, naming
its worst position.

A fabrication can stay inside every token's tolerance (halving every logprob does, on the dev
model's peaked distributions); honest rounding does not use the tolerance systematically. Over
the job's informative positions (``MIN_SPREAD``, at least ``MIN_POSITIONS``), the mean of
|Δ log p| / tolerance must stay at or below ``logprob_mean_excess`` and the mean of the signed
(reported − reference) / tolerance at or below ``logprob_signed_excess`` (flattering reports).

``reported_logprobs`` applies both against one reference (the text check tries the raw one and,
under a constraint, the constrained distribution's) and grades what passes by the mean |Δp|
(``agreement``, ``agreement_quality``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checker.outcome import CheckOutcome, failed, passed
from core.checks import TextChoice
from protocol.catalog import CheckSpec

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Disagreement:
    choice: int
    position: int
    reported: float
    reference: float
    allowed: float
    count: int  # positions beyond the tolerance in this choice

    def reason(self) -> str:
        return (
            f"choice {self.choice}: reported logprob {self.reported:.4f} at position "
            f"{self.position} disagrees with the reference's {self.reference:.4f} by "
            f"{abs(self.reported - self.reference):.4f} nats (tolerance {self.allowed:.4f}; "
            f"{self.count} such position(s))"
        )

    def evidence(self) -> dict[str, object]:
        return {
            "choice": self.choice,
            "position": self.position,
            "reported": self.reported,
            "reference": self.reference,
            "allowed": self.allowed,
            "positions": self.count,
        }


def worst_disagreement(
    raws: list[torch.Tensor],
    tokens: list[torch.Tensor],
    choices: list[TextChoice],
    tolerance: float,
    logit_tolerance: float,
) -> Disagreement | None:
    """The worst position (largest excess over its tolerance) of the first choice whose
    reported logprobs leave the tolerance, or None when every one is within it."""
    import torch

    for raw, ids, choice in zip(raws, tokens, choices, strict=True):
        if not len(choice.logprobs):
            continue
        reference = raw.double().gather(1, ids.unsqueeze(1)).squeeze(1)
        reported = torch.tensor(choice.logprobs, dtype=torch.float64).clamp_max(0.0)
        spread = 1.0 - torch.minimum(reference, reported).exp()
        allowed = tolerance + logit_tolerance * spread
        excess = (reported - reference).abs() - allowed
        bad = excess > 0
        if bool(bad.any()):
            position = int(excess.argmax())
            return Disagreement(
                choice=choice.index,
                position=position,
                reported=float(choice.logprobs[position]),
                reference=float(reference[position]),
                allowed=float(allowed[position]),
                count=int(bad.sum()),
            )
    return None


# Positions where either probability is below 1 − this carry information about a fabrication
# (a near-certain token's logprob is ≈ 0 whatever a miner claims).
MIN_SPREAD = 0.02
# The job-level means decide only over at least this many informative positions (one honest
# token may use most of its tolerance).
MIN_POSITIONS = 8


@dataclass(frozen=True)
class Excess:
    """Over a choice's informative positions (``MIN_SPREAD``): the mean of |Δ log p| / its
    tolerance, the mean of the signed (reported − reference) / tolerance (> 0: flattering),
    and how many positions."""

    mean: float
    signed: float
    positions: int


def mean_excess(
    reference: torch.Tensor, reported: torch.Tensor, tolerance: float, logit_tolerance: float
) -> Excess:
    """Honest rounding scatters below the per-token tolerance and averages far lower; a
    systematic fabrication within it keeps the mean high."""
    import torch

    reported = reported.double().clamp_max(0.0)
    reference = reference.double()
    spread = 1.0 - torch.minimum(reference, reported).exp()
    informative = spread >= MIN_SPREAD
    count = int(informative.sum())
    if not count:
        return Excess(0.0, 0.0, 0)
    ratio = ((reported - reference) / (tolerance + logit_tolerance * spread))[informative]
    return Excess(float(ratio.abs().mean()), float(ratio.mean()), count)


def job_excess(
    raws: list[torch.Tensor],
    tokens: list[torch.Tensor],
    choices: list[TextChoice],
    tolerance: float,
    logit_tolerance: float,
) -> Excess:
    """``mean_excess`` over every choice's positions together."""
    import torch

    references: list[torch.Tensor] = []
    reports: list[torch.Tensor] = []
    for raw, ids, choice in zip(raws, tokens, choices, strict=True):
        if len(choice.logprobs):
            references.append(raw.double().gather(1, ids.unsqueeze(1)).squeeze(1))
            reports.append(torch.tensor(choice.logprobs, dtype=torch.float64))
    if not references:
        return Excess(0.0, 0.0, 0)
    return mean_excess(torch.cat(references), torch.cat(reports), tolerance, logit_tolerance)


def excess_failure(excess: Excess, mean_bound: float, signed_bound: float) -> str | None:
    """Why the job's reported logprobs are fabricated on average, or None."""
    if excess.positions < MIN_POSITIONS:
        return None
    if excess.mean > mean_bound:
        return (
            f"reported logprobs are off the reference by {excess.mean:.2f} of their tolerance "
            f"on average over {excess.positions} informative positions (bound {mean_bound:.2f})"
        )
    if excess.signed > signed_bound:
        return (
            f"reported logprobs are systematically higher than the reference's: "
            f"{excess.signed:.2f} of their tolerance on average over {excess.positions} "
            f"informative positions (bound {signed_bound:.2f})"
        )
    return None


def reported_logprobs(
    reference: list[torch.Tensor],
    tokens: list[torch.Tensor],
    choices: list[TextChoice],
    spec: CheckSpec,
    evidence: dict[str, Any],
) -> CheckOutcome:
    """Step 7 against one reference: every reported logprob within the honest tolerance, no
    job-level excess, and the mean |Δp| quality."""
    mean_diff = agreement(reference, tokens, choices)
    evidence["logprob_mean_abs_diff"] = mean_diff
    worst = worst_disagreement(
        reference, tokens, choices, spec.logprob_tolerance, spec.logprob_logit_tolerance
    )
    quality = agreement_quality(mean_diff, spec.logprob_full_credit, spec.logprob_half_credit)
    excess = job_excess(
        reference, tokens, choices, spec.logprob_tolerance, spec.logprob_logit_tolerance
    )
    evidence["logprob_excess"] = {
        "mean": excess.mean,
        "signed": excess.signed,
        "positions": excess.positions,
    }
    fabricated = excess_failure(excess, spec.logprob_mean_excess, spec.logprob_signed_excess)
    if worst is not None:
        evidence["logprob_worst"] = worst.evidence()
        return failed("logprobs_disagree", worst.reason(), evidence)
    if fabricated is not None:
        return failed("logprobs_disagree", fabricated, evidence)
    if quality <= 0.0:
        return failed(
            "logprobs_disagree",
            f"reported logprobs disagree with the reference: mean |Δp| = {mean_diff:.3f}",
            evidence,
        )
    return passed(quality, evidence)


def agreement(
    raws: list[torch.Tensor], tokens: list[torch.Tensor], choices: list[TextChoice]
) -> float:
    """Mean over every token of |p_ref(token) − p_miner(token)| (raw probabilities)."""
    import torch

    total = 0.0
    count = 0
    for raw, ids, choice in zip(raws, tokens, choices, strict=True):
        if not len(choice.logprobs):
            continue
        reference = raw.double().gather(1, ids.unsqueeze(1)).squeeze(1).exp()
        reported = torch.tensor(choice.logprobs, dtype=torch.float64).exp()
        total += float((reference - reported).abs().sum())
        count += len(choice.logprobs)
    return total / count if count else 0.0


def agreement_quality(mean_diff: float, full: float, half: float) -> float:
    """Upstream's mapping: ≤ full → 1.0, linearly to 0.5 at half, 0 beyond."""
    if mean_diff <= full:
        return 1.0
    if mean_diff <= half and half > full:
        return 1.0 - 0.5 * (mean_diff - full) / (half - full)
    return 0.0
