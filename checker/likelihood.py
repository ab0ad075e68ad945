"""The text check's statistics over the reference distributions (docs/checker.md, "Likelihood").

At every completion position ``i`` the request samples from ``q_i`` = the reference model's
temperature-``T``, top-``p`` distribution (``inference.sampling.sampling_distribution``). For
the token ``t_i`` the miner delivered this module computes ``log q_i(t_i)`` and, from the whole
``q_i``, the entropy ``H_i``, the variance ``V_i`` of ``log q_i`` and, for each ``λ`` of
``LAMBDAS``, ``log Z_i(λ) = log Σ_t q_i(t)^(1-λ)``. Then, over every position of every choice:

- the z-score ``z = (S - μ) / σ`` with ``S = Σ log q_i(t_i)``, ``μ = -Σ H_i``, ``σ² = Σ V_i``
  (reported as evidence; not the decision, because short or peaked outputs are far from normal);
- the likelihood ratios ``L_λ = Σ_i [-λ log q_i(t_i) - log Z_i(λ)]``: ``exp(L_λ)`` is the
  likelihood ratio of "the tokens were drawn from ``r_i ∝ q_i^(1-λ)``" (a hotter distribution
  for ``λ > 0``: another model, random text, replayed text, padding; a colder one for ``λ < 0``:
  greedy or low-temperature output) against "drawn from ``q_i``". Under ``q`` every ``exp(L_λ)``,
  and any weighted mean of them, has expectation exactly 1 at every stopping time (it is a
  product of conditional likelihood ratios: a test martingale), so by Ville's inequality an
  honest sample reaches ``E ≥ 1/α`` with probability at most ``α``, whatever the temperature,
  top_p, vocabulary, length, stop rule or number of choices. No normal approximation, no
  degenerate case: a position where ``q_i`` is a point mass contributes exactly 0.

Under a constraint the raw logprobs come with the grammar's forbidden tokens at -inf: ``q_i``
is then the constrained distribution (renormalised over the allowed tokens before temperature
and top_p, as the miner samples), and every quantity above is over the allowed tokens only.

Below ``tie_temperature`` the tokens within the reference's numerical uncertainty of the top one
(``logit_margin`` raw nats) are one outcome: at a low temperature an honest machine's rounding
reorders them and moves their tempered probabilities by a factor up to exp(margin / T).

Tokens outside the nucleus (top_p < 1) are a hard failure unless they are within the
numerical tolerance of its boundary (``boundary_tolerance``, and tokens whose raw logit leads
the delivered one's by at most ``logit_margin`` count as ties); at such a position the nucleus is
widened to every token at least as likely as the delivered one, and the statistics use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inference.sampling import sampling_distribution

if TYPE_CHECKING:
    import torch

# λ of the likelihood-ratio alternatives and their weights in the per-job e-value; the last
# weight is the "end-of-sequence avoided" alternative's.
LAMBDAS: tuple[float, ...] = (-4.0, -1.0, 0.1, 0.3, 0.6)
WEIGHTS: tuple[float, ...] = (0.35, 0.10, 0.10, 0.10, 0.15, 0.20)
# The sequential detectors' e-values: the "too likely" side (greedy, colder sampling), and the
# end-of-sequence-avoided alternative alone.
GREEDY_WEIGHTS: tuple[float, ...] = (0.75, 0.25, 0.0, 0.0, 0.0, 0.0)
PADDING_WEIGHTS: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
# Tokens more probable than the delivered one by more than this factor count as "clearly
# above" it when deciding whether it is inside the nucleus.
NUCLEUS_RATIO = 1.05
# Positions processed at once: bounded so that [len(LAMBDAS), rows, vocab] float64 stays small.
MAX_CHUNK_ROWS = 64
CHUNK_ELEMENTS = 2_000_000


@dataclass
class PositionStats:
    """Per-position quantities of one choice (float64 tensors of length ``L``)."""

    log_q: torch.Tensor  # log q_i(t_i)
    entropy: torch.Tensor  # H_i
    variance: torch.Tensor  # Var_{q_i}[log q_i]
    log_z: torch.Tensor  # [len(LAMBDAS), L]: log Z_i(λ)
    log_not_eos: torch.Tensor  # log(1 - q_i(EOS))
    ended_with_eos: bool = False
    outside: list[int] = field(default_factory=list)  # positions outside the nucleus
    widened: list[int] = field(default_factory=list)  # positions inside only by tolerance


@dataclass
class Likelihood:
    """The job-level statistics (all choices together)."""

    tokens: int
    log_likelihood: float  # S
    mean: float  # μ
    variance: float  # σ²
    z: float
    log_ratios: list[float]  # L_λ per λ, then the EOS-avoided alternative's
    log_e: float  # log of the weighted mean of the ratios (WEIGHTS)
    log_e_greedy: float  # the same with GREEDY_WEIGHTS
    log_e_padding: float  # the same with PADDING_WEIGHTS

    def evidence(self) -> dict[str, object]:
        names = [f"lambda={lam:g}" for lam in LAMBDAS] + ["eos_avoided"]
        return {
            "tokens": self.tokens,
            "log_likelihood": self.log_likelihood,
            "expected_log_likelihood": self.mean,
            "sd_log_likelihood": math.sqrt(self.variance),
            "z": self.z,
            "log_ratios": dict(zip(names, self.log_ratios, strict=True)),
            "log_e": self.log_e,
            "log_e_greedy": self.log_e_greedy,
            "log_e_padding": self.log_e_padding,
        }


def position_stats(
    raw_logprobs: torch.Tensor,
    tokens: torch.Tensor,
    temperature: float,
    top_p: float,
    boundary_tolerance: float,
    eos: frozenset[int] = frozenset(),
    logit_margin: float = 0.0,
    tie_margin: float = 0.0,
) -> PositionStats:
    """Statistics of one choice from its reference raw logprobs ``[L, V]`` and token ids
    ``[L]`` (``temperature > 0``). Positions outside the nucleus are listed in ``outside``.

    With ``tie_margin`` > 0 the tokens whose raw logit is within it of the position's top one
    are one outcome (a tie: the reference cannot order them better than an honest machine's
    rounding); the statistics are those of that coarser draw, still exact under the reference."""
    import torch

    rows, vocab = int(raw_logprobs.shape[0]), int(raw_logprobs.shape[1])
    parts: dict[str, list[torch.Tensor]] = {
        "log_q": [],
        "entropy": [],
        "variance": [],
        "z": [],
        "not_eos": [],
    }
    outside: list[int] = []
    widened: list[int] = []
    lambdas = torch.tensor(LAMBDAS, dtype=torch.float64)
    not_eos_mask = torch.ones(vocab, dtype=torch.bool)
    eos_ids = [token for token in eos if 0 <= token < vocab]
    not_eos_mask[eos_ids] = False
    neg_inf = torch.tensor(-math.inf, dtype=torch.float64)
    step = max(1, min(MAX_CHUNK_ROWS, CHUNK_ELEMENTS // max(1, vocab)))
    for start in range(0, rows, step):
        chunk = raw_logprobs[start : start + step]
        chosen = tokens[start : start + step].long().unsqueeze(1)
        kept = _nucleus(chunk, chosen, temperature, top_p, boundary_tolerance, start, logit_margin)
        outside += kept.outside
        widened += kept.widened
        masked = torch.where(
            kept.mask, torch.log_softmax(chunk.double() / temperature, -1), neg_inf
        )
        log_q = masked - torch.logsumexp(masked, dim=1, keepdim=True)
        atoms, log_atoms, chosen_log_q = _merge_ties(chunk, chosen, log_q, kept.mask, tie_margin)
        q = log_atoms.exp()
        finite_log_q = torch.where(atoms, log_atoms, 0.0)
        entropy = -(q * finite_log_q).sum(dim=1)
        variance = ((q * finite_log_q.square()).sum(dim=1) - entropy.square()).clamp_min(0.0)
        # log Z(λ) = logsumexp((1 - λ) log q) over the nucleus, for every λ at once.
        weighted = (1.0 - lambdas).view(-1, 1, 1) * log_atoms.unsqueeze(0)
        log_z = torch.logsumexp(torch.where(atoms.unsqueeze(0), weighted, neg_inf), dim=2)
        parts["log_q"].append(chosen_log_q)
        parts["entropy"].append(entropy)
        parts["variance"].append(variance)
        parts["z"].append(log_z)
        parts["not_eos"].append(torch.logsumexp(torch.where(not_eos_mask, log_q, neg_inf), dim=1))
    ended = bool(rows) and int(tokens[-1]) in eos
    if rows == 0:
        empty = torch.zeros(0, dtype=torch.float64)
        z = torch.zeros((len(LAMBDAS), 0), dtype=torch.float64)
        return PositionStats(empty, empty, empty, z, empty)
    return PositionStats(
        log_q=torch.cat(parts["log_q"]),
        entropy=torch.cat(parts["entropy"]),
        variance=torch.cat(parts["variance"]),
        log_z=torch.cat(parts["z"], dim=1),
        log_not_eos=torch.cat(parts["not_eos"]),
        ended_with_eos=ended,
        outside=outside,
        widened=widened,
    )


def _merge_ties(
    chunk: torch.Tensor,
    chosen: torch.Tensor,
    log_q: torch.Tensor,
    mask: torch.Tensor,
    tie_margin: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The outcomes of each position (a mask), their log probabilities, and the delivered
    outcome's: the tokens within ``tie_margin`` raw nats of the top one merged into it."""
    import torch

    chosen_log_q = log_q.gather(1, chosen).squeeze(1)
    if tie_margin <= 0:
        return mask, log_q, chosen_log_q
    top = chunk.max(dim=1, keepdim=True)
    tied = mask & (chunk >= top.values - tie_margin)
    neg_inf = torch.tensor(-math.inf, dtype=log_q.dtype)
    tied_mass = torch.logsumexp(torch.where(tied, log_q, neg_inf), dim=1)
    first = torch.zeros_like(mask).scatter_(1, top.indices, True)
    folded = tied & ~first
    atoms = mask & ~folded
    log_atoms = torch.where(first, tied_mass.unsqueeze(1), torch.where(folded, neg_inf, log_q))
    chosen_log_q = torch.where(tied.gather(1, chosen).squeeze(1), tied_mass, chosen_log_q)
    return atoms, log_atoms, chosen_log_q


@dataclass
class _Nucleus:
    mask: torch.Tensor
    outside: list[int]
    widened: list[int]


def _nucleus(
    chunk: torch.Tensor,
    chosen: torch.Tensor,
    temperature: float,
    top_p: float,
    tolerance: float,
    offset: int,
    logit_margin: float = 0.0,
) -> _Nucleus:
    """The tokens each position may draw (``sampling_distribution``'s nucleus), widened at a
    position whose delivered token lies outside it only by the boundary tolerance. A token
    counts as clearly more likely than the delivered one when its raw logit leads by more than
    ``logit_margin`` (the reference's own numerical uncertainty) and its probability by more
    than ``NUCLEUS_RATIO``."""
    import torch

    if top_p >= 1.0:
        # Every token the logits allow (a constraint's grammar sets the others to -inf).
        return _Nucleus(torch.isfinite(chunk), [], [])
    mask = sampling_distribution(chunk, temperature, top_p) > 0
    inside = mask.gather(1, chosen).squeeze(1)
    outside: list[int] = []
    widened: list[int] = []
    if bool(inside.all()):
        return _Nucleus(mask, outside, widened)
    probs = torch.softmax(chunk.double() / temperature, dim=-1)
    chosen_p = probs.gather(1, chosen)
    ratio = max(NUCLEUS_RATIO, math.exp(min(logit_margin / temperature, 700.0)))
    above = torch.where(probs > chosen_p * ratio, probs, 0.0).sum(dim=1)
    for row in torch.nonzero(~inside).flatten().tolist():
        if bool(above[row] < top_p + tolerance):
            mask[row] |= probs[row] >= chosen_p[row]
            widened.append(offset + row)
        else:
            outside.append(offset + row)
    return _Nucleus(mask, outside, widened)


def combine(choices: list[PositionStats]) -> Likelihood:
    """The job's statistics from every choice's positions (one martingale over all of them).

    The EOS-avoided alternative draws every token from ``q_i`` without its end-of-sequence
    mass, renormalised: its likelihood ratio is ``Π 1 / (1 - q_i(EOS))`` over a choice that
    never emits EOS, and 0 over one that does."""
    import torch

    lambdas = torch.tensor(LAMBDAS, dtype=torch.float64)
    total = 0
    s = mu = var = 0.0
    ratios = torch.zeros(len(LAMBDAS), dtype=torch.float64)
    padding = 0.0
    for stats in choices:
        total += int(stats.log_q.numel())
        s += float(stats.log_q.sum())
        mu -= float(stats.entropy.sum())
        var += float(stats.variance.sum())
        ratios += (-lambdas.view(-1, 1) * stats.log_q.unsqueeze(0) - stats.log_z).sum(dim=1)
        padding += -math.inf if stats.ended_with_eos else -float(stats.log_not_eos.sum())
    z = (s - mu) / math.sqrt(var) if var > 1e-12 else 0.0
    every = [*(float(value) for value in ratios), padding]
    return Likelihood(
        tokens=total,
        log_likelihood=s,
        mean=mu,
        variance=var,
        z=z,
        log_ratios=every,
        log_e=_log_mixture(every, WEIGHTS),
        log_e_greedy=_log_mixture(every, GREEDY_WEIGHTS),
        log_e_padding=_log_mixture(every, PADDING_WEIGHTS),
    )


def _log_mixture(log_ratios: list[float], weights: tuple[float, ...]) -> float:
    """log Σ_k w_k exp(L_k) over the positive weights (a weighted mean of e-values is one)."""
    terms = [
        value + math.log(weight)
        for value, weight in zip(log_ratios, weights, strict=True)
        if weight > 0 and value != -math.inf
    ]
    if not terms:
        return -math.inf
    if any(math.isnan(term) or term == math.inf for term in terms):
        return math.inf
    top = max(terms)
    return top + math.log(sum(math.exp(term - top) for term in terms))
