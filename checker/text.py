"""The text check (SPEC §5): chat and completions, streamed or not, from token ids only.

Order (the first failing rule decides, cheapest first):

1. shape: one choice per requested ``n``, token ids aligned with finite logprobs ≤ 0, at most
   ``max_tokens`` tokens, every id inside the vocabulary;
2. ending: no token after an end-of-sequence token; ``stop`` needs an EOS last or a stop string
   completed by the last token; ``length`` needs exactly ``max_tokens`` tokens;
3. the text the customer was sent equals the visible decoding of the token ids;
4. constrained requests (``response_format`` JSON, ``tool_choice`` required or named: the
   request's ``Constraint``, built as the miner built it): every token is walked through the
   same grammar (``inference.grammars``) — a token it forbids (an end-of-sequence token before
   the grammar is complete included) fails the check, and so does ``stop`` before the grammar
   is complete (a stop string);
5. one teacher-forced pass per choice over prompt + token ids gives the reference raw logprobs;
   under a constraint, the grammar's mask is applied at every position (forbidden tokens get
   -inf), so the rules below run on the constrained, renormalised distribution, as the miner
   sampled from it;
6. temperature 0: every token is the reference argmax up to ``greedy_tolerance`` nats;
   temperature > 0: every token is inside the top_p nucleus (up to ``top_p_tolerance``), and
   the likelihood test (``checker.likelihood``) does not reject at ``likelihood_alpha``;
7. every reported logprob is within the honest numerical tolerance of the reference's
   (``checker.logprobs``) — the raw, unmasked reference, or under a constraint the constrained
   distribution's (vLLM reports those with structured outputs; the transformers engine the raw
   ones), whichever convention the answer fits — and they agree on average: mean
   |p_ref − p_miner| ≤ 0.125 → 1.0, linearly to 0.5 at 0.25, 0 beyond (the task's
   ``logprob_*_credit``) — the quality.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any, Protocol

from checker.likelihood import Likelihood, PositionStats, combine, position_stats
from checker.logprobs import agreement, reported_logprobs
from checker.outcome import CheckOutcome, failed
from core.checks import TextChoice, TextResponse
from inference.base import EngineInputError, TextRequest
from inference.grammars import Grammars, Replay
from protocol.catalog import CheckSpec

if TYPE_CHECKING:
    import numpy
    import torch

# A reported logprob may exceed 0 by this much (float rounding of log(1)).
LOGPROB_SLACK = 1e-4


class TextReference(Protocol):
    """What the text check needs of a reference engine (``TransformersTextEngine``)."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def eos_token_ids(self) -> frozenset[int]: ...

    @property
    def tokenizer(self) -> Any: ...

    def prompt_ids(self, request: TextRequest) -> list[int]: ...

    def grammars(self) -> Grammars: ...

    async def score_async(
        self, prompt_ids: list[int], completion_ids: list[int]
    ) -> numpy.ndarray: ...


async def check_text(
    request: TextRequest, response: TextResponse, reference: TextReference, spec: CheckSpec
) -> CheckOutcome:
    choices = sorted(response.choices, key=lambda choice: choice.index)
    work = float(sum(len(choice.token_ids) for choice in choices))
    evidence: dict[str, Any] = {
        "choices": len(choices),
        "tokens": int(work),
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    problem = shape_failure(request, choices, reference.vocab_size)
    if problem is None:
        problem = ending_failure(request, choices, reference.eos_token_ids, reference.tokenizer)
    if problem is None:
        problem = text_failure(request, choices, reference.tokenizer)
    if problem is not None:
        code, reason = problem
        return failed(code, reason, evidence, work=work)
    replays: list[Replay] | None = None
    if request.constraint is not None:
        constraint = request.constraint
        evidence["constraint"] = "schema" if constraint.schema is not None else "tools"
        grammars = reference.grammars()
        replays = [
            await asyncio.to_thread(grammars.replay, constraint, list(c.token_ids)) for c in choices
        ]
        problem = grammar_failure(choices, replays, reference.eos_token_ids)
        if problem is not None:
            code, reason = problem
            return failed(code, reason, evidence, work=work)
    try:
        prompt = reference.prompt_ids(request)
        scores = [await reference.score_async(prompt, list(c.token_ids)) for c in choices]
    except EngineInputError as exc:
        return failed("bad_request", f"the reference cannot score this request: {exc}", evidence)
    eos = reference.eos_token_ids
    outcome = await asyncio.to_thread(
        _judge, request, choices, scores, spec, evidence, eos, replays
    )
    outcome.work = work
    return outcome


# ---------------------------------------------------------------------------------------------
# Rules before the forward pass.


def shape_failure(
    request: TextRequest, choices: list[TextChoice], vocab: int
) -> tuple[str, str] | None:
    if [choice.index for choice in choices] != list(range(request.n)):
        indexes = [choice.index for choice in choices]
        return "choices", f"{request.n} choices were asked for; got indexes {indexes[:16]}"
    for choice in choices:
        where = f"choice {choice.index}"
        if len(choice.logprobs) != len(choice.token_ids):
            return (
                "bad_logprobs",
                f"{where}: {len(choice.token_ids)} token ids but {len(choice.logprobs)} logprobs",
            )
        if len(choice.token_ids) > request.max_tokens:
            return (
                "too_many_tokens",
                f"{where}: {len(choice.token_ids)} tokens for max_tokens={request.max_tokens}",
            )
        for position, token in enumerate(choice.token_ids):
            if not 0 <= token < vocab:
                return (
                    "token_out_of_vocab",
                    f"{where}: token {position} has id {token}, outside the vocabulary of {vocab}",
                )
        for position, value in enumerate(choice.logprobs):
            if not math.isfinite(value) or value > LOGPROB_SLACK:
                return "bad_logprobs", f"{where}: token {position} reported logprob {value}"
    return None


def ending_failure(
    request: TextRequest, choices: list[TextChoice], eos: frozenset[int], tokenizer: Any
) -> tuple[str, str] | None:
    for choice in choices:
        where = f"choice {choice.index}"
        ids = choice.token_ids
        for position, token in enumerate(ids[:-1]):
            if token in eos:
                return (
                    "after_eos",
                    f"{where}: generation continued after an end-of-sequence "
                    f"token at position {position}",
                )
        ends_with_eos = bool(ids) and ids[-1] in eos
        reason = choice.finish_reason
        if reason == "stop":
            if not ends_with_eos and not _stop_string_ends(ids, request.stop, tokenizer):
                return (
                    "stop_without_end",
                    f"{where}: finish_reason 'stop' without an "
                    "end-of-sequence token or a stop sequence completed by the last token",
                )
        elif reason == "length":
            if ends_with_eos:
                return (
                    "finish_reason",
                    f"{where}: finish_reason 'length' after an end-of-sequence token",
                )
            if len(ids) != request.max_tokens:
                return (
                    "truncated",
                    f"{where}: finish_reason 'length' after {len(ids)} "
                    f"tokens of max_tokens={request.max_tokens}",
                )
        else:
            return "finish_reason", f"{where}: finish_reason {reason!r}"
    return None


def _decode(tokenizer: Any, ids: list[int]) -> str:
    try:
        return str(tokenizer.decode(ids, skip_special_tokens=True))
    except (ValueError, TypeError, OverflowError, IndexError, KeyError):
        return "\ufffd"


def _stop_string_ends(ids: list[int], stops: tuple[str, ...], tokenizer: Any) -> bool:
    if not ids or not stops:
        return False
    full = _decode(tokenizer, ids)
    before = _decode(tokenizer, ids[:-1])
    return any(stop and stop in full and stop not in before for stop in stops)


def visible_text(ids: list[int], stops: tuple[str, ...], tokenizer: Any) -> str:
    """What an engine shows for these tokens: the decoding without special tokens, cut before
    the first stop sequence."""
    text = _decode(tokenizer, ids)
    cuts = [position for stop in stops if stop and (position := text.find(stop)) >= 0]
    return text[: min(cuts)] if cuts else text


def _normal(text: str) -> str:
    return text.replace("\ufffd", "").strip()


def text_failure(
    request: TextRequest, choices: list[TextChoice], tokenizer: Any
) -> tuple[str, str] | None:
    for choice in choices:
        expected = visible_text(list(choice.token_ids), request.stop, tokenizer)
        if _normal(expected) != _normal(choice.text):
            return (
                "text_mismatch",
                f"choice {choice.index}: the text sent to the customer "
                f"({len(choice.text)} characters) is not the decoding of the token ids "
                f"({len(expected)} characters)",
            )
    return None


def grammar_failure(
    choices: list[TextChoice], replays: list[Replay], eos: frozenset[int]
) -> tuple[str, str] | None:
    """A constrained choice must stay inside its grammar, and end (``stop``) only once the
    grammar is complete. A choice cut by ``length`` may leave it incomplete."""
    for choice, replay in zip(choices, replays, strict=True):
        where = f"choice {choice.index}"
        position = replay.forbidden
        if position is not None:
            token = choice.token_ids[position]
            if token in eos:
                return (
                    "grammar_incomplete",
                    f"{where}: end-of-sequence token at position {position} before the "
                    "constraint's grammar was complete",
                )
            return (
                "grammar_forbidden",
                f"{where}: token {position} (id {token}) is forbidden by the constraint's "
                "grammar (response_format or tool_choice)",
            )
        if choice.finish_reason == "stop" and not replay.done:
            return (
                "grammar_incomplete",
                f"{where}: finish_reason 'stop' before the constraint's grammar was complete",
            )
    return None


# ---------------------------------------------------------------------------------------------
# Rules on the reference distributions (run in a worker thread).


def _judge(
    request: TextRequest,
    choices: list[TextChoice],
    scores: list[numpy.ndarray],
    spec: CheckSpec,
    evidence: dict[str, Any],
    eos: frozenset[int],
    replays: list[Replay] | None = None,
) -> CheckOutcome:
    import torch

    unmasked = [torch.from_numpy(score) for score in scores]
    tokens = [torch.tensor(choice.token_ids, dtype=torch.long) for choice in choices]
    # (for the evidence of an earlier failure; step 7 below decides on the logprobs)
    evidence["logprob_mean_abs_diff"] = agreement(unmasked, tokens, choices)
    raws = unmasked if replays is None else constrained(unmasked, replays)
    if request.temperature <= 0.0:
        problem = greedy_failure(raws, tokens, choices, spec.greedy_tolerance)
        if problem is not None:
            return failed("not_argmax", problem, evidence)
        sequential: dict[str, float] = {}
    else:
        stats: list[PositionStats] = []
        for choice, raw, ids in zip(choices, raws, tokens, strict=True):
            one = position_stats(
                raw,
                ids,
                request.temperature,
                request.top_p,
                spec.top_p_tolerance,
                eos,
                logit_margin=spec.logit_margin,
                tie_margin=spec.logit_margin if request.temperature < spec.tie_temperature else 0,
            )
            if one.outside:
                evidence["outside_positions"] = one.outside[:16]
                return failed(
                    "outside_top_p",
                    f"choice {choice.index}: {len(one.outside)} token(s) outside the top_p="
                    f"{request.top_p} nucleus of the reference (first at position "
                    f"{one.outside[0]})",
                    evidence,
                )
            if one.widened:
                evidence.setdefault("boundary_positions", []).extend(one.widened[:16])
            stats.append(one)
        likelihood: Likelihood = combine(stats)
        evidence["likelihood"] = likelihood.evidence()
        bound = math.log(1.0 / spec.likelihood_alpha)
        evidence["likelihood_bound"] = bound
        if likelihood.log_e >= bound:
            side = "below" if likelihood.z < 0 else "above"
            return failed(
                "likelihood",
                f"the tokens are not a sample of the reference distribution: likelihood "
                f"{side} expectation (z = {likelihood.z:.1f}), log e-value "
                f"{likelihood.log_e:.1f} ≥ {bound:.1f}",
                evidence,
            )
        sequential = {"greedy": likelihood.log_e_greedy, "padding": likelihood.log_e_padding}
    # Reported logprobs are the model's own: the raw (unmasked) ones, or under a constraint the
    # constrained distribution's (what vLLM reports with structured outputs). The convention
    # the answer fits is the one judged; a fabrication fits neither.
    conventions = [unmasked] if replays is None else [unmasked, renormalised(raws)]
    outcome = reported_logprobs(conventions[0], tokens, choices, spec, evidence)
    for reference in conventions[1:]:
        if outcome.quality > 0.0:
            break
        other = reported_logprobs(reference, tokens, choices, spec, dict(evidence))
        if other.quality > 0.0:
            other.evidence["logprobs_convention"] = "constrained"
            outcome = other
    outcome.sequential = sequential
    return outcome


def renormalised(masked: list[torch.Tensor]) -> list[torch.Tensor]:
    """Log-probabilities of the constrained distribution: each position's masked raw logprobs
    renormalised over the tokens the grammar allows."""
    import torch

    return [row - torch.logsumexp(row, dim=-1, keepdim=True) for row in masked]


def constrained(raws: list[torch.Tensor], replays: list[Replay]) -> list[torch.Tensor]:
    """The reference raw logprobs with each position's grammar mask applied (-inf where the
    grammar forbids a token): the rules below renormalise over what is left."""
    masked = []
    for raw, replay in zip(raws, replays, strict=True):
        copy = raw.clone()
        if len(copy):
            replay.apply(copy)
        masked.append(copy)
    return masked


def greedy_failure(
    raws: list[torch.Tensor],
    tokens: list[torch.Tensor],
    choices: list[TextChoice],
    tolerance: float,
) -> str | None:
    for raw, ids, choice in zip(raws, tokens, choices, strict=True):
        if not len(choice.token_ids):
            continue
        best = raw.max(dim=1).values
        chosen = raw.gather(1, ids.unsqueeze(1)).squeeze(1)
        gap = best - chosen
        bad = (gap > tolerance).nonzero().flatten().tolist()
        if bad:
            position = bad[0]
            return (
                f"choice {choice.index}: temperature 0 but token {position} is not the "
                f"reference argmax ({float(gap[position]):.3f} nats below it; "
                f"{len(bad)} such token(s))"
            )
    return None
