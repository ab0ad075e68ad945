"""Calibration of the text check on honest samples: the empirical false-accusation rate.

For every temperature in {0.7, 1.0, 1.5} and top_p in {1.0, 0.9, 0.5}, ``--jobs`` honest chat
answers of the dev model (the miner's own engine, seeded, max_tokens log-uniform in 16..512,
varied prompts) are checked by ``checker.text.check_text`` against a separate reference engine.
Reports, per setting: the largest per-job log e-value (the test rejects at log(1/α) = 6.91 for
α = 1e-3), the z-score range, how many jobs were rejected, and the largest value the two
sequential detectors (greedy, padding) reach when the setting's jobs are folded in order into
one miner's e-CUSUM (alarm at log(1e4) = 9.21). Also prints the same numbers for a greedy
miner (T=0 output answering these requests) as the power check.

    .venv/bin/python benchmarks/checker_calibration.py [--jobs 120]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.text import check_text  # noqa: E402
from core.checks import TextChoice, TextResponse  # noqa: E402
from inference.base import ChatTurn, ChoiceEnd, TextRequest, TokenEvent  # noqa: E402
from inference.transformers_text import TransformersTextEngine  # noqa: E402
from protocol.catalog import CheckSpec  # noqa: E402
from tests.support.checker_workloads import PROMPTS  # noqa: E402

SPEC = CheckSpec()


async def answer(engine: TransformersTextEngine, request: TextRequest) -> TextResponse:
    ids: list[int] = []
    logprobs: list[float] = []
    text, finish = "", None
    async for event in engine.generate(request):
        if isinstance(event, TokenEvent):
            ids.append(event.token_id)
            logprobs.append(event.logprob)
            text += event.text
        elif isinstance(event, ChoiceEnd):
            text += event.text
            finish = event.finish_reason
    return TextResponse(
        choices=[
            TextChoice(index=0, token_ids=ids, logprobs=logprobs, text=text, finish_reason=finish)
        ]
    )


def cusum(values: list[float]) -> float:
    """The largest e-CUSUM statistic (log) over a sequence of per-job log e-values."""
    level, peak = 0.0, -math.inf
    for value in values:
        level = max(level, 0.0) + value
        peak = max(peak, level)
    return peak


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120, help="per temperature x top_p")
    args = parser.parse_args()
    miner = TransformersTextEngine("builtin:tiny-llama")
    reference = TransformersTextEngine("builtin:tiny-llama")
    await miner.start()
    await reference.start()
    bound = math.log(1 / SPEC.likelihood_alpha)
    rng = random.Random(19)
    started = time.monotonic()
    total = rejected = 0
    print(
        "| T | top_p | jobs | tokens (mean) | max log e | rejected | z min | z max | "
        "greedy CUSUM max | padding CUSUM max | greedy miner: rejected per job |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for temperature in (0.7, 1.0, 1.5):
        for top_p in (1.0, 0.9, 0.5):
            log_es, zs, tokens, greedy_seq, padding_seq = [], [], [], [], []
            greedy_rejected = 0
            for index in range(args.jobs):
                max_tokens = round(math.exp(rng.uniform(math.log(16), math.log(512))))
                prompt = PROMPTS[index % len(PROMPTS)] + f" #{index}"
                request = TextRequest(
                    max_tokens=max_tokens,
                    messages=(ChatTurn("user", prompt),),
                    temperature=temperature,
                    top_p=top_p,
                    seed=rng.randrange(1 << 62),
                )
                outcome = await check_text(request, await answer(miner, request), reference, SPEC)
                evidence = outcome.evidence.get("likelihood", {})
                log_es.append(float(evidence.get("log_e", math.nan)))
                zs.append(float(evidence.get("z", math.nan)))
                tokens.append(int(outcome.work))
                greedy_seq.append(outcome.sequential.get("greedy", 0.0))
                padding_seq.append(outcome.sequential.get("padding", 0.0))
                rejected += outcome.code == "likelihood"
                total += 1
                if index % 4 == 0:  # the power side, on a quarter of the requests
                    greedy = TextRequest(
                        **{
                            **{f: getattr(request, f) for f in request.__struct_fields__},
                            "temperature": 0.0,
                        }
                    )
                    cheat = await check_text(request, await answer(miner, greedy), reference, SPEC)
                    greedy_rejected += cheat.code == "likelihood"
            print(
                f"| {temperature} | {top_p} | {len(log_es)} | {sum(tokens) / len(tokens):.0f} | "
                f"{max(log_es):.2f} | {sum(v >= bound for v in log_es)} | {min(zs):.2f} | "
                f"{max(zs):.2f} | {cusum(greedy_seq):.2f} | {cusum(padding_seq):.2f} | "
                f"{greedy_rejected}/{(args.jobs + 3) // 4} |",
                flush=True,
            )
    print(
        f"\n{rejected} of {total} honest jobs rejected (bound log e ≥ {bound:.2f}); "
        f"{(time.monotonic() - started) / 60:.1f} min"
    )


if __name__ == "__main__":
    asyncio.run(main())
