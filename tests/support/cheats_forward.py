"""The checker suite's forward-engine behaviours: a real miner server whose ``forward`` engine
talks to a vLLM-format upstream (``tests.support.cheat_server``) that is honest (float32 or
bfloat16) or cheats (fabricated logprobs, replay, changed sampling).

Requests are chat, streamed or not; ``grid`` (24-96 tokens) walks temperature 0, 0.2, 0.7, 1 and
top_p 1, 0.9; a cheat gets the requests where its change matters (e.g. ``greedy`` only
temperatures > 0), longer (96-512 tokens) so that a job carries evidence.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.support.cheat_server import ForwardCheatEngine, Mode
from tests.support.checker_workloads import CHAT, Behaviour, Call, chat

LENGTHS = (24, 48, 96, 64)
# Cheats need evidence: informative positions (not near-certain tokens), so longer answers.
MEDIUM = (96, 128, 192, 256)
LONG = (192, 256, 384, 512)


def grid(index: int) -> Call:
    temperature = (0.0, 0.2, 0.7, 1.0)[index % 4]
    top_p = (None, 0.9)[(index // 4) % 2]
    return chat(
        index,
        temperature=temperature,
        top_p=top_p,
        max_tokens=LENGTHS[(index // 2) % 4],
        seed_base=7000,
    )


def sampled(index: int) -> Call:
    """Temperatures 0.7, 1, 1.5: where the model's tokens are not all near-certain."""
    temperature = (0.7, 1.0, 1.5)[index % 3]
    return chat(index, temperature=temperature, max_tokens=MEDIUM[index % 4], seed_base=8000)


def at(temperature: float, lengths: tuple[int, ...] = LENGTHS) -> Callable[[int], Call]:
    def calls(index: int) -> Call:
        return chat(
            index,
            temperature=temperature,
            max_tokens=lengths[index % len(lengths)],
            seed_base=9000,
        )

    return calls


def _behaviour(
    name: str,
    mode: Mode,
    calls: Callable[[int], Call],
    jobs: int,
    note: str,
    dtype: str = "float32",
) -> Behaviour:
    return Behaviour(
        f"forward {name}",
        mode == "honest",
        CHAT,
        calls,
        lambda: ForwardCheatEngine(mode, dtype),
        jobs=jobs,
        note=note,
        # The forward-engine test (tests/integration/checker/test_checker_forward.py) asks 0.1.
        cheat_mean=0.1,
    )


def forward_behaviours(jobs: int = 10) -> list[Behaviour]:
    """Honest upstreams get twice ``jobs`` (every temperature of the grid five times at 10)."""
    return [
        _behaviour("honest float32", "honest", grid, 2 * jobs, "T 0-1, top_p 1/0.9"),
        _behaviour("honest bfloat16", "honest", grid, 2 * jobs, "T 0-1, top_p 1/0.9", "bfloat16"),
        _behaviour("logprobs constant", "constant", sampled, jobs, "every logprob -0.001"),
        _behaviour("logprobs shifted", "shifted", sampled, jobs, "half the true logprob"),
        _behaviour("logprobs shuffled", "shuffled", sampled, jobs, "permuted between positions"),
        _behaviour("replay", "replay", grid, jobs, "the previous request's completion"),
        _behaviour("greedy at T>0", "greedy", at(1.0, LONG), jobs, "T=1 asked, 0 served"),
        _behaviour("sampling at T=0", "sampling", at(0.0, LONG), jobs, "T=0 asked, 1 served"),
        # Caught by the sequential greedy detector after a few jobs (the per-job test rarely
        # decides at T = 0.75 against 1.5 on the peaked dev model): scored over 3 x jobs.
        _behaviour(
            "temperature halved", "half_temperature", at(1.5, LONG), 3 * jobs, "T=1.5 asked"
        ),
        _behaviour(
            "top_p tighter", "tight_top_p", at(1.5, LONG), jobs, "T=1.5, top_p=1 asked, 0.5 served"
        ),
    ]
