"""TransformersTextEngine on the tiny Llama: sampling, logprobs, stops, n, cancellation."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch
from inference_helpers import collect, ends, tokens, visible_text

from inference.base import ChatTurn, EngineError, EngineInputError, TextRequest, TokenEvent
from inference.sampling import sampling_distribution
from inference.transformers_text import TransformersTextEngine

HELLO = (ChatTurn("user", "Hello, how are you?"),)


def chat(**fields) -> TextRequest:
    fields.setdefault("max_tokens", 48)
    fields.setdefault("messages", HELLO)
    return TextRequest(**fields)


async def test_same_seed_same_tokens_and_other_seed_differs(text_engine):
    request = chat(temperature=1.0, seed=7, max_tokens=64)
    first = await collect(text_engine, request)
    second = await collect(text_engine, request)
    assert first == second
    other = await collect(text_engine, chat(temperature=1.0, seed=8, max_tokens=64))
    assert [t.token_id for t in tokens(other)] != [t.token_id for t in tokens(first)]


async def test_every_choice_ends_exactly_once(text_engine):
    events = await collect(text_engine, chat(temperature=1.0, seed=3, n=3))
    assert sorted(ends(events)) == [0, 1, 2]
    for choice in range(3):
        choice_events = [e for e in events if e.choice == choice]
        assert choice_events[-1] == ends(events)[choice]
        assert all(isinstance(e, TokenEvent) for e in choice_events[:-1])


async def test_choice_i_equals_a_single_request_with_seed_plus_i(text_engine):
    events = await collect(text_engine, chat(temperature=1.0, seed=100, n=3))
    for choice in range(3):
        alone = await collect(text_engine, chat(temperature=1.0, seed=100 + choice))
        assert [(t.token_id, t.logprob) for t in tokens(events, choice)] == [
            (t.token_id, t.logprob) for t in tokens(alone)
        ]


async def test_reported_logprobs_match_a_teacher_forced_pass(text_engine):
    request = chat(temperature=1.0, seed=11, max_tokens=96, top_logprobs=3)
    generated = tokens(await collect(text_engine, request))
    ids = [t.token_id for t in generated]
    table = text_engine.score(text_engine.prompt_ids(request), ids)
    assert table.shape == (len(ids), text_engine.vocab_size)
    reported = np.array([t.logprob for t in generated])
    assert np.abs(table[np.arange(len(ids)), ids] - reported).max() < 1e-4
    for position, token in enumerate(generated):
        expected = np.argsort(-table[position])[:3].tolist()
        assert [alt.token_id for alt in token.top] == expected
        assert [alt.logprob for alt in token.top] == sorted(
            (a.logprob for a in token.top), reverse=True
        )
    scored = await text_engine.score_async(text_engine.prompt_ids(request), ids)
    assert np.allclose(scored, table)


async def test_temperature_zero_is_argmax_at_every_position(text_engine):
    request = chat(temperature=0.0, max_tokens=64)
    generated = tokens(await collect(text_engine, request))
    table = text_engine.score(text_engine.prompt_ids(request), [t.token_id for t in generated])
    assert [t.token_id for t in generated] == table.argmax(axis=1).tolist()
    again = tokens(await collect(text_engine, chat(temperature=0.0, max_tokens=64, seed=99)))
    assert [t.token_id for t in again] == [t.token_id for t in generated]


async def test_top_p_samples_stay_inside_the_nucleus(text_engine):
    for seed in range(6):
        request = chat(temperature=1.5, top_p=0.5, seed=seed, max_tokens=48)
        generated = tokens(await collect(text_engine, request))
        table = torch.from_numpy(
            text_engine.score(text_engine.prompt_ids(request), [t.token_id for t in generated])
        )
        q = sampling_distribution(table, 1.5, 0.5)
        for position, token in enumerate(generated):
            assert q[position, token.token_id] > 0, f"seed {seed} position {position}"


async def test_high_temperature_wide_nucleus_explores(text_engine):
    seen = set()
    for seed in range(8):
        events = await collect(text_engine, chat(temperature=1.5, seed=seed, max_tokens=64))
        seen.add(tuple(t.token_id for t in tokens(events)))
    assert len(seen) >= 6


async def test_visible_text_is_the_utf8_decoding_of_the_tokens(text_engine):
    for seed in range(4):
        events = await collect(text_engine, chat(temperature=1.0, seed=seed, max_tokens=80))
        generated = tokens(events)
        raw = b"".join(
            t.token_bytes for t in generated if t.token_id not in text_engine.eos_token_ids
        )
        assert visible_text(events) == raw.decode("utf-8", errors="replace")


async def test_stop_string_cuts_before_the_sequence(text_engine):
    base = await collect(text_engine, chat(temperature=0.0, max_tokens=64))
    full = visible_text(base)
    assert len(full) >= 6, full
    stop = full[3:5]
    cut = full.index(stop)
    events = await collect(
        text_engine, chat(temperature=0.0, max_tokens=64, stop=(stop, "never-there"))
    )
    assert visible_text(events) == full[:cut]
    assert ends(events)[0].finish_reason == "stop"
    assert len(tokens(events)) < len(tokens(base))
    assert all(stop not in t.text for t in tokens(events))


async def test_length_finish_and_max_tokens(text_engine):
    for seed in range(10):
        events = await collect(text_engine, chat(temperature=1.0, seed=seed, max_tokens=5))
        assert len(tokens(events)) <= 5
        if ends(events)[0].finish_reason == "length":
            assert len(tokens(events)) == 5
            return
    pytest.fail("no request of 5 tokens ran to its length")


async def test_eos_ends_a_choice_with_an_empty_token(text_engine):
    sky = (ChatTurn("user", "Why is the sky blue?"),)
    greedy = await collect(text_engine, chat(temperature=0.0, max_tokens=128, messages=sky))
    generated = tokens(greedy)
    assert ends(greedy)[0].finish_reason == "stop" and len(generated) == 73
    assert generated[-1].token_id in text_engine.eos_token_ids and generated[-1].text == ""
    assert all(t.token_id not in text_engine.eos_token_ids for t in generated[:-1])
    stopped = 0
    for seed in range(4):
        events = await collect(
            text_engine, chat(temperature=1.0, seed=seed, max_tokens=160, messages=sky)
        )
        if ends(events)[0].finish_reason == "stop":
            assert tokens(events)[-1].token_id in text_engine.eos_token_ids
            stopped += 1
    assert stopped >= 1
    endless = await collect(
        text_engine, chat(temperature=0.0, max_tokens=64, messages=(ChatTurn("user", "Hi"),))
    )
    assert ends(endless)[0].finish_reason == "length" and len(tokens(endless)) == 64


async def test_prompt_forms_agree(text_engine):
    request = chat(temperature=0.0, max_tokens=16)
    ids = text_engine.prompt_ids(request)
    assert text_engine.count_prompt_tokens(request) == len(ids)
    assert ids[0] == text_engine.tokenizer.bos_token_id
    by_ids = await collect(
        text_engine, TextRequest(prompt_ids=tuple(ids), max_tokens=16, temperature=0.0)
    )
    assert [t.token_id for t in tokens(by_ids)] == [
        t.token_id for t in tokens(await collect(text_engine, request))
    ]
    text_request = TextRequest(prompt="Once upon a time", max_tokens=4)
    assert text_engine.prompt_ids(text_request)[0] == text_engine.tokenizer.bos_token_id
    assert text_engine.count_prompt_tokens(text_request) == len("Once upon a time") + 1


async def test_refuses_what_does_not_fit_the_context(text_engine):
    request = TextRequest(prompt="x" * 2000, max_tokens=100)
    with pytest.raises(EngineInputError, match="context"):
        await collect(text_engine, request)
    with pytest.raises(EngineInputError):
        await collect(text_engine, TextRequest(prompt_ids=(1, 2, 99999), max_tokens=4))
    with pytest.raises(EngineInputError):
        await collect(text_engine, chat(max_tokens=0))


async def test_cancellation_stops_generation_promptly(text_engine):
    request = chat(temperature=0.0, max_tokens=2000, messages=(ChatTurn("user", "Hi"),))
    stream = text_engine.generate(request)
    received = 0
    async for _event in stream:
        received += 1
        if received == 3:
            break
    await stream.aclose()
    started = time.perf_counter()
    events = await asyncio.wait_for(
        collect(text_engine, chat(temperature=0.0, max_tokens=4)), timeout=10
    )
    assert time.perf_counter() - started < 5
    assert len(tokens(events)) <= 4


async def test_cancelled_task_frees_the_worker(text_engine):
    async def consume() -> None:
        async for _ in text_engine.generate(
            chat(temperature=0.0, max_tokens=2000, messages=(ChatTurn("user", "Hi"),))
        ):
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    events = await asyncio.wait_for(
        collect(text_engine, chat(temperature=0.0, max_tokens=4)), timeout=10
    )
    assert ends(events)


async def test_not_started_engine_raises():
    engine = TransformersTextEngine("builtin:tiny-llama")
    with pytest.raises(EngineError, match="not started"):
        await collect(engine, chat())


async def test_missing_model_is_a_clear_error(tmp_path):
    engine = TransformersTextEngine("sn19-test/definitely-not-cached-model")
    with pytest.raises(EngineError, match="local Hugging Face cache"):
        await engine.start()
    await engine.close()
