"""The reference's numerical uncertainty (checker.likelihood ``logit_margin``/``tie_margin``):
at a low temperature the tokens within the margin of the top one are one outcome (exact e-values
still), and a token whose raw logit trails by less than the margin is not outside the nucleus."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from checker.likelihood import LAMBDAS, combine, position_stats
from tests.support.checker_fakes import EOS, log_softmax

# Two near-tied tokens (0.8 raw nats apart: bfloat16 can swap them), then clearly lower ones.
NEAR_TIE = (2.0, 1.2, -2.0, -3.0, -30.0, -4.0)


def stats_for(tokens: list[int], temperature: float, top_p: float = 1.0, tie: float = 0.0):
    raw = torch.from_numpy(np.tile(log_softmax(NEAR_TIE), (len(tokens), 1)))
    return position_stats(
        raw,
        torch.tensor(tokens),
        temperature,
        top_p,
        0.02,
        frozenset({EOS}),
        logit_margin=1.5,
        tie_margin=tie,
    )


def test_a_swapped_near_tie_at_low_temperature_is_rejected_without_ties_only() -> None:
    # At T = 0.1 the second token has q = e^-8: forty of them are a sure rejection unless the
    # two are one outcome.
    tokens = [1] * 40
    assert combine([stats_for(tokens, 0.1)]).log_e > 100
    assert combine([stats_for(tokens, 0.1, tie=1.5)]).log_e < 0.01


def test_tokens_outside_the_tie_still_count() -> None:
    tokens = [2] * 10  # 4 raw nats below the top: not a tie, q ≈ e^-40 at T = 0.1
    assert combine([stats_for(tokens, 0.1, tie=1.5)]).log_e > 100


def test_merged_e_values_keep_expectation_one() -> None:
    """Every 2-token path under the merged outcomes (tokens 0 and 1 one outcome)."""
    temperature = 0.3
    raw = torch.from_numpy(log_softmax(NEAR_TIE)).double()
    q = torch.softmax(raw / temperature, -1).numpy()
    outcomes = {0: q[0] + q[1], 2: q[2], 3: q[3], 5: q[5], 4: q[4]}
    totals = np.zeros(len(LAMBDAS))
    for first, second in itertools.product(outcomes, repeat=2):
        stats = stats_for([first, second], temperature, tie=1.5)
        ratios = (-torch.tensor(LAMBDAS).view(-1, 1) * stats.log_q - stats.log_z).sum(dim=1)
        totals += outcomes[first] * outcomes[second] * np.exp(ratios.numpy())
    np.testing.assert_allclose(totals, 1.0, rtol=1e-6)  # float32 reference rows


def test_a_near_tie_is_inside_the_nucleus_within_the_logit_margin() -> None:
    # top_p 0.5 at T = 0.5: the nucleus is token 0 alone (q ≈ 0.83); token 1 trails by 0.8
    # raw nats, inside logit_margin, so it is a boundary token, not outside.
    stats = stats_for([1, 0, 1], 0.5, top_p=0.5)
    assert stats.outside == [] and stats.widened == [0, 2]
    stats = stats_for([2], 0.5, top_p=0.5)
    assert stats.outside == [0]
