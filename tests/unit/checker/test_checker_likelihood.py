"""The likelihood statistics: exact e-values (expectation 1 under the reference, at any
stopping rule), the z-score's moments, degenerate distributions, the nucleus tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from checker.likelihood import LAMBDAS, WEIGHTS, combine, position_stats
from inference.sampling import sampling_distribution
from tests.support.checker_fakes import EOS, LOGITS, VOCAB, log_softmax


def stats_for(tokens: list[int], temperature: float = 1.0, top_p: float = 1.0, logits=LOGITS):
    raw = torch.from_numpy(np.tile(log_softmax(logits), (len(tokens), 1)))
    return position_stats(raw, torch.tensor(tokens), temperature, top_p, 0.02, frozenset({EOS}))


def q_of(temperature: float, top_p: float, logits=LOGITS) -> np.ndarray:
    """q in float64: the scaled softmax over ``sampling_distribution``'s nucleus."""
    raw = torch.from_numpy(log_softmax(logits)).unsqueeze(0)
    kept = (sampling_distribution(raw, temperature, top_p)[0] > 0).numpy()
    scaled = np.exp(raw[0].double().numpy() / temperature) * kept
    return scaled / scaled.sum()


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 1.0), (1.5, 0.9), (1.0, 0.6)])
def test_every_e_value_has_expectation_one_over_all_paths(temperature: float, top_p: float) -> None:
    """Enumerate every completion of up to 3 tokens (stopping at EOS): the expectation of each
    likelihood ratio, of their mixture and of the EOS-avoided ratio under q is exactly 1."""
    q = q_of(temperature, top_p)
    support = [token for token in range(VOCAB) if q[token] > 0]
    totals = np.zeros(len(LAMBDAS) + 1)
    mixture = 0.0
    mass = 0.0

    def paths(prefix: list[int]):
        if prefix and prefix[-1] == EOS or len(prefix) == 3:
            yield prefix
            return
        for token in support:
            yield from paths([*prefix, token])

    for path in paths([]):
        probability = math.prod(q[token] for token in path)
        result = combine([stats_for(path, temperature, top_p)])
        totals += probability * np.exp(np.array(result.log_ratios))
        mixture += probability * math.exp(result.log_e)
        mass += probability
    assert mass == pytest.approx(1.0, abs=1e-12)
    assert totals == pytest.approx(np.ones_like(totals), abs=1e-6)
    assert mixture == pytest.approx(1.0, abs=1e-6)
    assert sum(WEIGHTS) == pytest.approx(1.0)


def test_moments_match_a_hand_computation() -> None:
    tokens = [0, 1, 2, 0]
    q = q_of(1.0, 1.0)
    log_q = np.log(q)
    entropy = -(q * log_q).sum()
    variance = (q * log_q**2).sum() - entropy**2
    result = combine([stats_for(tokens)])
    assert result.log_likelihood == pytest.approx(sum(log_q[t] for t in tokens), rel=1e-9)
    assert result.mean == pytest.approx(-4 * entropy, rel=1e-9)
    assert result.variance == pytest.approx(4 * variance, rel=1e-9)
    expected_z = (result.log_likelihood - result.mean) / math.sqrt(result.variance)
    assert result.z == pytest.approx(expected_z)


def test_a_point_mass_position_contributes_nothing() -> None:
    certain = (50.0, -50.0, -50.0, -50.0, -60.0, -50.0)
    result = combine([stats_for([0, 0, 0], logits=certain)])
    assert result.variance == pytest.approx(0.0, abs=1e-12)
    assert result.z == 0.0
    assert all(abs(value) < 1e-9 for value in result.log_ratios[:-1])
    assert result.log_e == pytest.approx(0.0, abs=1e-9)


def test_unlikely_tokens_and_greedy_runs_raise_the_e_value() -> None:
    unlikely = combine([stats_for([3] * 40)])
    assert unlikely.z < -5 and unlikely.log_e > math.log(1000)
    greedy = combine([stats_for([0] * 200, temperature=1.5)])
    assert greedy.z > 3 and greedy.log_e > math.log(1000)
    assert greedy.log_e_greedy > math.log(1000)


def test_eos_avoided_ratio() -> None:
    likely_eos = (0.0, -1.0, -1.0, -1.0, -30.0, 1.0)
    padded = combine([stats_for([0] * 20, logits=likely_eos)])
    q_eos = q_of(1.0, 1.0, likely_eos)[EOS]
    assert padded.log_e_padding == pytest.approx(-20 * math.log(1 - q_eos), rel=1e-6)
    stopped = combine([stats_for([0, 0, EOS], logits=likely_eos)])
    assert stopped.log_e_padding == -math.inf


def test_nucleus_outside_and_boundary_tolerance() -> None:
    # q at T=1: a .607, b .223, c .135, d .030: top_p = 0.75 keeps a and b only.
    outside = stats_for([0, 3], top_p=0.75)
    assert outside.outside == [1]
    # c sits at the boundary of top_p = 0.82: the mass clearly above it (a+b = .830) is below
    # top_p + tolerance, so hardware noise could have let it in.
    boundary = stats_for([2], top_p=0.82)
    assert boundary.outside == [] and boundary.widened == [0]
    inside = stats_for([0, 1], top_p=0.75)
    assert inside.outside == [] and inside.widened == []
