"""What constrained answers cost (SPEC §7): grammar compilation and token masks on the miner and
the checker, and the gateway's final check of the JSON.

For three constraints — a small JSON schema, a nested one (arrays, enums, nested objects, as
a pydantic model produces) and a required call among three tools — prints:

- miner / checker: building the grammar (xgrammar from the schema: cold, then from the cache of
  ``inference.grammars``), and per token the mask (fill the bitmask, apply it to the logits) and
  the matcher's advance, over an answer generated under the grammar by the dev chat model's
  tokenizer with random logits (so the grammar, not a model, decides the length);
- the dev chat model generating the same request with and without the constraint (tokens/s,
  one thread), i.e. what a miner pays per token in practice;
- checker: replaying an answer through the grammar (``Grammars.replay``: every position's
  mask and the matcher's advance) and applying the masks to its ``[tokens, vocab]`` reference
  logprobs, per token; and the whole text check (``checker.text.check_text`` with the dev
  model as reference, T = 1) of the same answers with and without the constraint;
- gateway: checking a complete answer (``core.miners.structured.Expectation.check``: JSON parse
  and schema validation, or reading the tool call) with the compiled validator cached.

    .venv/bin/python benchmarks/grammar_costs.py [--tokens 200] [--repeat 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 16},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
}
NESTED = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 4},
        "kind": {"type": "string", "enum": ["book", "film", "song"]},
        "rating": {"type": "number"},
        "author": {
            "type": "object",
            "properties": {
                "first": {"type": "string", "maxLength": 12},
                "last": {"type": "string", "maxLength": 12},
                "born": {"type": "integer"},
            },
            "required": ["first", "last"],
        },
        "available": {"type": "boolean"},
    },
    "required": ["name", "tags", "kind", "author", "available"],
}
TOOLS = [("get_weather", SMALL), ("lookup", NESTED), ("noop", {"type": "object"})]


def timed(work: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``work`` over ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def constraints() -> dict[str, Any]:
    from inference.base import Constraint

    return {
        "small schema": Constraint(schema=json.dumps(SMALL)),
        "nested schema": Constraint(schema=json.dumps(NESTED)),
        "3 tools, required": Constraint(
            tools=tuple((name, json.dumps(schema)) for name, schema in TOOLS)
        ),
    }


def walk(grammars: Any, constraint: Any, vocab: int, tokens: int, seed: int) -> tuple[int, float]:
    """Generate under the grammar with random logits; (tokens, seconds spent in mask + accept)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    matcher = grammars.matcher(constraint)
    spent = 0.0
    count = 0
    for _ in range(tokens):
        logits = torch.randn(vocab, generator=generator)
        started = time.perf_counter()
        matcher.mask(logits)
        token = int(torch.argmax(logits))
        matcher.accept(token)
        spent += time.perf_counter() - started
        count += 1
        if matcher.done:
            break
    return count, spent


def engine_rates(tokens: int) -> dict[str, tuple[float, float]]:
    """The dev chat model's tokens/s without and with each constraint (one thread)."""
    import asyncio

    from inference.base import TextRequest, TokenEvent
    from inference.registry import load_engine
    from protocol.catalog import resolve_catalog

    task = resolve_catalog("dev").get("sn19-tiny-chat")
    assert task is not None
    engine: Any = load_engine(task, device="cpu")

    async def rate(constraint: Any) -> float:
        request = TextRequest(
            max_tokens=tokens,
            prompt="Describe the item.",
            temperature=1.0,
            seed=3,
            constraint=constraint,
        )
        started = time.perf_counter()
        count = sum(
            [1 async for event in engine.generate(request) if isinstance(event, TokenEvent)]
        )
        return count / (time.perf_counter() - started)

    async def run() -> dict[str, tuple[float, float]]:
        await engine.start()
        try:
            await rate(None)  # warm-up
            plain = await rate(None)
            return {name: (plain, await rate(c)) for name, c in constraints().items()}
        finally:
            await engine.close()

    return asyncio.run(run())


def checker_costs(tokens: int, repeat: int) -> dict[str, tuple[int, float, float, float]]:
    """Per constraint: (mean tokens of the answers, replay + mask per token in seconds, the
    whole check of one answer with the constraint, the same without it)."""
    import asyncio

    import msgspec
    import torch

    from checker.text import check_text
    from core.checks import TextChoice, TextResponse
    from inference.base import ChoiceEnd, TextRequest, TokenEvent
    from inference.registry import load_engine
    from protocol.catalog import resolve_catalog

    task = resolve_catalog("dev").get("sn19-tiny-chat")
    assert task is not None
    engine: Any = load_engine(task, device="cpu")

    async def answer(request: TextRequest) -> TextResponse:
        ids: list[int] = []
        logprobs: list[float] = []
        text, finish = "", None
        async for event in engine.generate(request):
            if isinstance(event, TokenEvent):
                ids.append(event.token_id)
                logprobs.append(event.logprob)
                text += event.text
            elif isinstance(event, ChoiceEnd):
                text, finish = text + event.text, event.finish_reason
        choice = TextChoice(
            index=0, token_ids=ids, logprobs=logprobs, text=text, finish_reason=finish
        )
        return TextResponse(choices=[choice])

    async def run() -> dict[str, tuple[int, float, float, float]]:
        await engine.start()
        out: dict[str, tuple[int, float, float, float]] = {}
        try:
            grammars = engine.grammars()
            for name, constraint in constraints().items():
                counts, per_token, with_c, without_c = [], [], [], []
                for seed in range(10):
                    request = TextRequest(
                        max_tokens=tokens,
                        prompt="Describe the item.",
                        temperature=1.0,
                        seed=seed,
                        constraint=constraint,
                    )
                    response = await answer(request)
                    ids = response.choices[0].token_ids
                    scores = torch.randn(len(ids), engine.vocab_size)

                    def replay(c: Any = constraint, i: list[int] = ids, x: Any = scores) -> None:
                        grammars.replay(c, i).apply(x.clone())

                    counts.append(len(ids))
                    per_token.append(timed(replay, max(1, repeat // 10)) / max(1, len(ids)))
                    free = msgspec.structs.replace(request, constraint=None)
                    for target, req in ((with_c, request), (without_c, free)):
                        started = time.perf_counter()
                        await check_text(req, response, engine, task.check)
                        target.append(time.perf_counter() - started)
                out[name] = (
                    round(statistics.mean(counts)),
                    statistics.median(per_token),
                    statistics.median(with_c),
                    statistics.median(without_c),
                )
        finally:
            await engine.close()
        return out

    return asyncio.run(run())


def gateway_checks(repeat: int) -> dict[str, float]:
    from core.miners.structured import Expectation
    from protocol.tool_calls import Call, render_call

    answer_small = json.dumps({"city": "Paris", "days": 3})
    answer_nested = json.dumps(
        {
            "name": "Dune",
            "tags": ["sf", "desert"],
            "kind": "book",
            "rating": 4.5,
            "author": {"first": "Frank", "last": "Herbert", "born": 1920},
            "available": True,
        }
    )
    call = render_call(Call(name="lookup", arguments=answer_nested), "hermes")
    cases = {
        "small schema": (Expectation(schema=SMALL), answer_small),
        "nested schema": (Expectation(schema=NESTED), answer_nested),
        "3 tools, required": (Expectation(tools=dict(TOOLS)), call),
    }
    out: dict[str, float] = {}
    for name, (expectation, text) in cases.items():
        expectation.check(text)  # compiles and caches the validator
        out[name] = timed(lambda e=expectation, t=text: e.check(t), repeat)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200, help="most tokens per answer")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    import torch

    from inference import grammars as grammar_module
    from inference.grammars import Grammars
    from inference.tiny import EOT, build_tiny_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_tiny_tokenizer()
    vocab = len(tokenizer)
    stop = tokenizer.convert_tokens_to_ids(EOT)
    print(f"tokenizer: the dev chat model's ({vocab} tokens); torch threads: 1\n")
    Grammars(tokenizer, vocab_size=vocab, stop_ids=[stop])  # xgrammar's own start-up, once
    print("miner / checker (per request and per token):")
    print(f"  {'constraint':20} {'build cold':>11} {'cached':>9} {'tokens':>7} {'per token':>10}")
    for name, constraint in constraints().items():
        grammar_module._grammar.cache_clear()
        started = time.perf_counter()
        cold = Grammars(tokenizer, vocab_size=vocab, stop_ids=[stop])
        cold.compiled(constraint)
        cold_s = time.perf_counter() - started
        cached = timed(lambda c=constraint, g=cold: g.compiled(c), args.repeat)
        counts, spent = zip(
            *(walk(cold, constraint, vocab, args.tokens, seed) for seed in range(10)),
            strict=True,
        )
        per_token = sum(spent) / sum(counts)
        print(
            f"  {name:20} {cold_s * 1000:9.1f}ms {cached * 1e6:7.1f}µs "
            f"{sum(counts) / len(counts):7.0f} {per_token * 1e6:8.1f}µs"
        )
    print("\ndev chat model, one thread, tokens/s (unconstrained → constrained):")
    for name, (plain, constrained) in engine_rates(args.tokens).items():
        print(f"  {name:20} {plain:7.0f} → {constrained:7.0f}  ({constrained / plain:5.1%})")
    print("\nchecker: replay + mask per token; whole check of one answer (with → without):")
    for name, (count, per_token, with_c, without_c) in checker_costs(
        args.tokens, args.repeat
    ).items():
        print(
            f"  {name:20} {count:5} tokens {per_token * 1e6:7.1f}µs/token   "
            f"{with_c * 1000:6.1f}ms → {without_c * 1000:6.1f}ms"
        )
    print("\ngateway, checking a complete answer (validator cached):")
    for name, seconds in gateway_checks(args.repeat * 20).items():
        print(f"  {name:20} {seconds * 1e6:7.1f}µs")


if __name__ == "__main__":
    main()
