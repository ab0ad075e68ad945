"""The reported-logprob rule (checker.logprobs): per-token tolerance and the job-level means."""

from __future__ import annotations

import math

import torch

from checker.logprobs import (
    MIN_POSITIONS,
    excess_failure,
    job_excess,
    mean_excess,
    worst_disagreement,
)
from core.checks import TextChoice
from protocol.catalog import CheckSpec

SPEC = CheckSpec()
TOL, LOGIT = SPEC.logprob_tolerance, SPEC.logprob_logit_tolerance


def rows(probabilities: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw logprob rows over a 2-token vocabulary where token 0 has each probability."""
    p = torch.tensor(probabilities, dtype=torch.float64)
    raw = torch.stack([p.log(), (1 - p).clamp_min(1e-30).log()], dim=1)
    return raw.float(), torch.zeros(len(probabilities), dtype=torch.long)


def choice(logprobs: list[float]) -> TextChoice:
    return TextChoice(index=0, token_ids=[0] * len(logprobs), logprobs=logprobs)


def test_rounding_within_the_tolerance_passes() -> None:
    raw, ids = rows([0.9999, 0.9, 0.5, 0.05])
    reference = [math.log(p) for p in (0.9999, 0.9, 0.5, 0.05)]
    # A near-certain token is exact up to 0.01; an unlikely one may be off by ~1.4 nats.
    reported = [reference[0] - 0.005, reference[1] + 0.1, reference[2] - 0.7, reference[3] + 1.3]
    assert worst_disagreement([raw], [ids], [choice(reported)], TOL, LOGIT) is None


def test_the_worst_position_beyond_the_tolerance_is_named() -> None:
    raw, ids = rows([0.9999, 0.9, 0.3, 0.3])
    reported = [-0.0001, -0.105, -0.001, -0.9]  # position 2 claims 0.999 for a 0.3 token
    worst = worst_disagreement([raw], [ids], [choice(reported)], TOL, LOGIT)
    assert worst is not None and worst.position == 2 and worst.count == 1
    assert "position 2" in worst.reason() and worst.allowed < abs(math.log(0.3))


def test_halved_logprobs_pass_each_token_but_not_on_average() -> None:
    probabilities = [0.6, 0.7, 0.8, 0.9, 0.75, 0.65, 0.85, 0.6, 0.7, 0.8]
    raw, ids = rows(probabilities)
    halved = [math.log(p) / 2 for p in probabilities]
    assert worst_disagreement([raw], [ids], [choice(halved)], TOL, LOGIT) is None
    excess = job_excess([raw], [ids], [choice(halved)], TOL, LOGIT)
    assert excess.positions == len(probabilities) and excess.signed > SPEC.logprob_signed_excess
    reason = excess_failure(excess, SPEC.logprob_mean_excess, SPEC.logprob_signed_excess)
    assert reason is not None and "systematically higher" in reason


def test_shuffled_logprobs_fail_the_mean() -> None:
    probabilities = [0.99, 0.3, 0.95, 0.5, 0.97, 0.4, 0.9, 0.6, 0.98, 0.35]
    reference = torch.tensor([math.log(p) for p in probabilities], dtype=torch.float64)
    shuffled = reference[[1, 0, 3, 2, 5, 4, 7, 6, 9, 8]]
    excess = mean_excess(reference, shuffled, TOL, LOGIT)
    assert abs(excess.signed) < SPEC.logprob_signed_excess < SPEC.logprob_mean_excess < excess.mean
    assert excess_failure(excess, SPEC.logprob_mean_excess, SPEC.logprob_signed_excess)


def test_honest_noise_and_short_jobs_pass_on_average() -> None:
    generator = torch.Generator().manual_seed(0)
    p = torch.rand(64, generator=generator, dtype=torch.float64) * 0.9 + 0.05
    reference = p.log()
    noise = (torch.rand(64, generator=generator, dtype=torch.float64) - 0.5) * 0.4 * (1 - p)
    excess = mean_excess(reference, reference + noise, TOL, LOGIT)
    assert excess.positions == 64
    assert excess_failure(excess, SPEC.logprob_mean_excess, SPEC.logprob_signed_excess) is None
    few = mean_excess(
        reference[: MIN_POSITIONS - 1], reference[: MIN_POSITIONS - 1] / 2, TOL, LOGIT
    )
    assert few.signed > SPEC.logprob_signed_excess
    assert excess_failure(few, SPEC.logprob_mean_excess, SPEC.logprob_signed_excess) is None
