"""The text check's rules, each on a hand-made response over the six-token fake vocabulary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from checker.logprobs import agreement_quality
from checker.text import check_text
from core.checks import TextChoice, TextResponse
from inference.base import ChatTurn, TextRequest
from inference.sampling import sampling_distribution
from protocol.catalog import CheckSpec
from tests.support.checker_fakes import EOS, LETTERS, LOGITS, FakeReference, log_softmax

SPEC = CheckSpec()
RAW = log_softmax(LOGITS)


def request(**fields) -> TextRequest:
    base = {"max_tokens": 8, "messages": (ChatTurn("user", "hi"),), "temperature": 1.0}
    return TextRequest(**{**base, **fields})


def choice(
    ids: list[int], finish: str | None = "length", *, index: int = 0, logprobs=None, text=None
):
    return TextChoice(
        index=index,
        token_ids=ids,
        logprobs=[float(RAW[i]) if i < len(RAW) else -1.0 for i in ids]
        if logprobs is None
        else logprobs,
        text="".join(LETTERS[i] for i in ids if i < 4) if text is None else text,
        finish_reason=finish,
    )


async def run(req: TextRequest, *choices: TextChoice, reference=None):
    return await check_text(
        req, TextResponse(choices=list(choices)), reference or FakeReference(), SPEC
    )


def sample(n: int, temperature: float, top_p: float, seed: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    q = sampling_distribution(torch.from_numpy(RAW), temperature, top_p)
    q[EOS] = 0.0  # keep going to max_tokens
    return [int(torch.multinomial(q, 1, generator=generator)) for _ in range(n)]


@pytest.mark.parametrize(("temperature", "top_p"), [(0.7, 1.0), (1.0, 0.9), (1.5, 1.0)])
async def test_honest_samples_pass_with_full_quality(temperature: float, top_p: float) -> None:
    for seed in range(5):
        ids = sample(8, temperature, top_p, seed)
        outcome = await run(request(temperature=temperature, top_p=top_p), choice(ids))
        assert (outcome.quality, outcome.code) == (1.0, ""), outcome.reason
        assert outcome.work == 8
        assert set(outcome.sequential) == {"greedy", "padding"}


async def test_greedy_at_temperature_zero_passes_and_ties_are_tolerated() -> None:
    outcome = await run(request(temperature=0.0), choice([0] * 8))
    assert outcome.quality == 1.0 and outcome.sequential == {}
    tie = log_softmax((2.0, 2.0 - 1e-4, 0.5, -1.0, -30.0, -3.0))
    reference = FakeReference(lambda ids: np.tile(tie, (len(ids), 1)))
    second = choice([1] * 8, logprobs=[float(tie[1])] * 8)
    assert (await run(request(temperature=0.0), second, reference=reference)).quality == 1.0


async def test_not_the_argmax_at_temperature_zero() -> None:
    # Token 3 trails the argmax by 3 nats; within greedy_tolerance (1.5) it would be a tie.
    outcome = await run(request(temperature=0.0), choice([0, 0, 3, 0, 0, 0, 0, 0]))
    assert outcome.code == "not_argmax" and outcome.quality == 0.0
    assert "token 2" in outcome.reason


@pytest.mark.parametrize(
    ("choices", "code"),
    [
        ([choice([0] * 9)], "too_many_tokens"),
        ([choice([0, 7, 0, 0, 0, 0, 0, 0])], "token_out_of_vocab"),
        ([choice([0] * 8, logprobs=[-0.5] * 7)], "bad_logprobs"),
        ([choice([0] * 8, logprobs=[-0.5] * 7 + [math.nan])], "bad_logprobs"),
        ([choice([0] * 8, logprobs=[-0.5] * 7 + [0.3])], "bad_logprobs"),
        ([choice([0, EOS, 0, 0, 0, 0, 0, 0])], "after_eos"),
        ([choice([0, 0, 1], "stop")], "stop_without_end"),
        ([choice([0, 0, 1], "length")], "truncated"),
        ([choice([0, 0, EOS], "length")], "finish_reason"),
        ([choice([0] * 8, None)], "finish_reason"),
        ([choice([0] * 8, "content_filter")], "finish_reason"),
        ([choice([0] * 8, text="something else")], "text_mismatch"),
        ([choice([0] * 8, index=1)], "choices"),
        ([], "choices"),
    ],
)
async def test_hard_failures(choices: list[TextChoice], code: str) -> None:
    outcome = await run(request(), *choices)
    assert outcome.code == code, outcome.reason
    assert outcome.quality == 0.0 and outcome.reason


async def test_shape_failures_cost_no_forward_pass() -> None:
    reference = FakeReference()
    await run(request(), choice([0] * 9), reference=reference)
    assert reference.scored == []


async def test_endings_that_are_fine() -> None:
    assert (await run(request(), choice([0, 1, EOS], "stop"))).quality == 1.0
    # A stop string completed by the last token ends the choice; the text stops before it.
    stopped = choice([0, 1, 2], "stop", text="a")
    assert (await run(request(stop=("bc",)), stopped)).code == ""
    # ... but a stop string that was already complete before the last token does not.
    late = choice([1, 2, 0], "stop", text="")
    assert (await run(request(stop=("bc",)), late)).code == "stop_without_end"


async def test_outside_top_p() -> None:
    outcome = await run(request(top_p=0.5), choice([0, 0, 0, 3, 0, 0, 0, 0]))
    assert outcome.code == "outside_top_p" and "position 3" in outcome.reason


async def test_tokens_from_another_distribution_fail_the_likelihood_test() -> None:
    outcome = await run(request(max_tokens=64), choice([3, 2] * 32))
    assert outcome.code == "likelihood"
    evidence = outcome.evidence["likelihood"]
    assert evidence["z"] < -5 and evidence["log_e"] >= outcome.evidence["likelihood_bound"]


async def test_greedy_output_when_sampling_was_asked_fails_two_sided() -> None:
    outcome = await run(request(max_tokens=200, temperature=1.5), choice([0] * 200))
    assert outcome.code == "likelihood" and "above" in outcome.reason


async def test_several_choices_are_one_test(reference) -> None:
    a = choice(sample(8, 1.0, 1.0, 1), index=0)
    b = choice(sample(8, 1.0, 1.0, 2), index=1)
    outcome = await run(request(n=2), a, b, reference=reference)
    assert outcome.quality == 1.0 and outcome.evidence["likelihood"]["tokens"] == 16
    assert len(reference.scored) == 2


async def test_fabricated_logprobs_lose_quality() -> None:
    ids = sample(8, 1.0, 1.0, 3)
    outcome = await run(request(), choice(ids, logprobs=[-2.5] * 8))
    assert outcome.code == "logprobs_disagree" and outcome.quality == 0.0
    assert outcome.evidence["logprob_mean_abs_diff"] > 0.25


@pytest.mark.parametrize(
    ("mean", "quality"), [(0.0, 1.0), (0.125, 1.0), (0.1875, 0.75), (0.25, 0.5), (0.2501, 0.0)]
)
def test_agreement_mapping(mean: float, quality: float) -> None:
    assert agreement_quality(mean, 0.125, 0.25) == pytest.approx(quality)
