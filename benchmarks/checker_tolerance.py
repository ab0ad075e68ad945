"""How far an honest miner's numbers drift from the checker's reference (docs/checker.md,
"Numerical tolerance").

The reference is the dev chat model (``builtin:tiny-llama``) in float32 on one torch thread, as
the checker runs it. Honest controls generate chat completions from the same weights:
``bfloat16`` (the model cast, as GPU miners run it), ``float16``, and ``float32`` on another
torch thread count. For every delivered token the script compares, against the reference's
teacher-forced pass:

- the reported logprob (``abs(Δ log p)``, per reference-probability bin, and the worst);
- the reference gap below the argmax at temperature 0 (what ``greedy_tolerance`` must absorb);
- the largest raw-logprob disagreement over the control's own top tokens (its teacher-forced
  pass against the reference), the logit margin the tie rules use.

    .venv/bin/python benchmarks/checker_tolerance.py [--prompts 24] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.likelihood import combine, position_stats  # noqa: E402
from checker.logprobs import Excess, mean_excess  # noqa: E402
from inference.base import ChatTurn, TextRequest, TokenEvent  # noqa: E402
from inference.transformers_text import TransformersTextEngine  # noqa: E402
from protocol.catalog import CheckSpec  # noqa: E402
from tests.support.checker_workloads import messages  # noqa: E402

TEMPERATURES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
# Reference-probability bins of the reported-logprob comparison: [low, high).
BINS = ((0.5, 1.01), (0.1, 0.5), (0.01, 0.1), (1e-4, 0.01), (0.0, 1e-4))
CONTROLS = {
    "bfloat16": {"dtype": "bfloat16", "threads": 1},
    "float16": {"dtype": "float16", "threads": 1},
    "float32, 2 threads": {"dtype": "float32", "threads": 2},
}


@dataclass
class Completion:
    prompt_ids: list[int]
    temperature: float
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    control_rows: Any = None  # the control's teacher-forced raw logprobs [L, V]


def request(index: int, temperature: float, max_tokens: int) -> TextRequest:
    turns = tuple(ChatTurn(m["role"], m["content"]) for m in messages(index))
    return TextRequest(
        messages=turns, max_tokens=max_tokens, temperature=temperature, seed=7 * index + 1
    )


async def generate(name: str, prompts: int, max_tokens: int) -> list[Completion]:
    import torch

    options = CONTROLS[name]
    engine = TransformersTextEngine(
        "builtin:tiny-llama", dtype=str(options["dtype"]), threads=int(options["threads"])
    )
    await engine.start()
    done: list[Completion] = []
    try:
        for temperature in TEMPERATURES:
            for index in range(prompts):
                text_request = request(index, temperature, max_tokens)
                one = Completion(engine.prompt_ids(text_request), temperature)
                async for event in engine.generate(text_request):
                    if isinstance(event, TokenEvent):
                        one.token_ids.append(event.token_id)
                        one.logprobs.append(event.logprob)
                done.append(one)
        # The control's own teacher-forced pass, for the full-vocabulary comparison.
        for one in done:
            one.control_rows = torch.from_numpy(
                await engine.score_async(one.prompt_ids, one.token_ids)
            )
    finally:
        await engine.close()
    return done


FABRICATIONS = ("constant", "shifted", "shuffled")


def fabricate(label: str, reported: Any, shuffler: random.Random) -> Any:
    """The fabrications of ``tests.support.cheat_server`` applied to honest reports."""
    import torch

    if label == "constant":
        return torch.full_like(reported, -0.001)
    if label == "shifted":
        return reported / 2
    if label == "shuffled":
        order = list(range(len(reported)))
        shuffler.shuffle(order)
        return reported[order]
    return reported


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    name: str, prompts: int, max_tokens: int, reference: TransformersTextEngine
) -> None:
    import torch

    completions = await generate(name, prompts, max_tokens)
    torch.set_num_threads(1)
    by_bin: dict[tuple[float, float], list[float]] = {b: [] for b in BINS}
    worst = (0.0, 0.0)
    # abs(Δ log p) / (1 - min(p_ref, p_reported)): the logit-scale error behind it (see
    # checker.logprobs); and abs(Δ log p) where both probabilities exceed 0.999.
    scaled: list[float] = []
    certain: list[float] = []
    greedy_gaps: list[float] = []
    margins: list[float] = []
    # Per completion: the mean excess ratio (checker.logprobs.mean_excess) of the honest
    # reports and of the fabrications applied to them, with the informative position count.
    excess: dict[str, list[Excess]] = {k: [] for k in ("honest", *FABRICATIONS)}
    spec = CheckSpec()
    shuffler = random.Random(5)
    # The likelihood test's log e-value of each honest completion, per temperature > 0.
    log_e: dict[float, list[float]] = {}
    eos = reference.eos_token_ids
    for one in completions:
        rows = torch.from_numpy(await reference.score_async(one.prompt_ids, one.token_ids))
        if one.temperature > 0:
            stats = position_stats(
                rows,
                torch.tensor(one.token_ids),
                one.temperature,
                1.0,
                spec.top_p_tolerance,
                eos,
                logit_margin=spec.logit_margin,
                tie_margin=spec.logit_margin if one.temperature < spec.tie_temperature else 0,
            )
            log_e.setdefault(one.temperature, []).append(combine([stats]).log_e)
        ids = torch.tensor(one.token_ids)
        ref = rows.gather(1, ids.unsqueeze(1)).squeeze(1).double()
        reported = torch.tensor(one.logprobs, dtype=torch.float64)
        for label, values in excess.items():
            claimed = fabricate(label, reported, shuffler)
            values.append(
                mean_excess(ref, claimed, spec.logprob_tolerance, spec.logprob_logit_tolerance)
            )
        pairs = zip(ref.tolist(), reported.tolist(), strict=True)
        for value, given in pairs:
            diff = abs(given - value)
            p = math.exp(value)
            spread = 1.0 - math.exp(min(value, given))
            scaled.append(diff / max(spread, 1e-12))
            if spread < 1e-3:
                certain.append(diff)
            for low, high in BINS:
                if low <= p < high:
                    by_bin[(low, high)].append(diff)
            if diff > worst[0]:
                worst = (diff, p)
        if one.temperature == 0.0:
            greedy_gaps += (
                rows.max(dim=1).values - rows.gather(1, ids.unsqueeze(1)).squeeze(1)
            ).tolist()
        control = one.control_rows
        top = control.topk(8, dim=1).indices
        # Only tokens the reference gives at least 1e-3 (the far tail decides nothing).
        near = rows.gather(1, top) > math.log(1e-3)
        gaps = (control.gather(1, top) - rows.gather(1, top)).abs()
        margins += torch.where(near, gaps, 0.0).max(dim=1).values.tolist()
    tokens = sum(len(one.token_ids) for one in completions)
    print(f"\n## {name}: {len(completions)} completions, {tokens} tokens")
    print("| reference p | tokens | median abs(Δ log p) | p99 | max |")
    print("|---|---|---|---|---|")
    for (low, high), diffs in by_bin.items():
        label = f"[{low:g}, {min(high, 1.0):g}{']' if high > 1 else ')'}"
        print(
            f"| {label} | {len(diffs)} | {quantile(diffs, 0.5):.4f} | "
            f"{quantile(diffs, 0.99):.4f} | {max(diffs, default=float('nan')):.4f} |"
        )
    print(f"worst abs(Δ log p) {worst[0]:.4f} (reference p {worst[1]:.3g})")
    print(
        "| reports | completions with informative positions | mean excess: median | p90 "
        "| max | min | signed: min | median | max |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, values in excess.items():
        means = [value.mean for value in values if value.positions]
        signed = [value.signed for value in values if value.positions]
        print(
            f"| {label} | {len(means)} | {quantile(means, 0.5):.3f} | {quantile(means, 0.9):.3f} "
            f"| {max(means, default=0.0):.3f} | {min(means, default=0.0):.3f} "
            f"| {min(signed, default=0.0):.3f} | {quantile(signed, 0.5):.3f} "
            f"| {max(signed, default=0.0):.3f} |"
        )
    print(
        f"abs(Δ log p) / (1 - min p): p99 {quantile(scaled, 0.99):.4f}, max "
        f"{max(scaled, default=0.0):.4f}; abs(Δ log p) where both p > 0.999: max "
        f"{max(certain, default=0.0):.5f} ({len(certain)} tokens)"
    )
    print(
        f"T=0 gap below the reference argmax: p99 {quantile(greedy_gaps, 0.99):.4f}, "
        f"max {max(greedy_gaps, default=0.0):.4f} nats"
    )
    bound = math.log(1 / spec.likelihood_alpha)
    for temperature, values in log_e.items():
        print(
            f"T={temperature:g}: likelihood log e max {max(values):.2f} "
            f"(bound {bound:.2f}; {sum(v >= bound for v in values)} of {len(values)} rejected)"
        )
    print(
        f"raw-logprob disagreement over the control's top 8 tokens (reference p > 1e-3): p99 "
        f"{quantile(margins, 0.99):.4f}, max {max(margins, default=0.0):.4f} nats"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--only", choices=list(CONTROLS), default=None)
    args = parser.parse_args()
    started = time.monotonic()
    reference = TransformersTextEngine("builtin:tiny-llama", dtype="float32", threads=1)
    await reference.start()
    try:
        for name in CONTROLS:
            if args.only is None or args.only == name:
                await measure(name, args.prompts, args.max_tokens, reference)
    finally:
        await reference.close()
    print(
        f"\n{args.prompts} prompts x temperatures {TEMPERATURES}, max_tokens "
        f"{args.max_tokens}; {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
