"""A reference engine over a six-token vocabulary with fixed distributions, so every rule of the
text check can be exercised with exact numbers (used by the checker's unit tests)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from inference.base import TextRequest

# ids 0-3 are the letters a-d, 4 is a special (BOS), 5 is EOS.
LETTERS = "abcd"
EOS = 5
VOCAB = 6
# Raw logits of every position unless a test says otherwise: a > b > c > d, EOS unlikely.
LOGITS = (2.0, 1.0, 0.5, -1.0, -30.0, -3.0)


def log_softmax(logits: tuple[float, ...]) -> np.ndarray:
    top = max(logits)
    total = math.log(sum(math.exp(value - top) for value in logits)) + top
    return np.array([value - total for value in logits], dtype=np.float32)


class FakeTokenizer:
    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(LETTERS[i] for i in ids if i < len(LETTERS))


class FakeReference:
    """``rows(completion) -> [len, VOCAB]`` raw logprobs; by default ``LOGITS`` everywhere."""

    vocab_size = VOCAB
    eos_token_ids = frozenset({EOS})

    def __init__(self, rows: Callable[[list[int]], np.ndarray] | None = None) -> None:
        self.tokenizer = FakeTokenizer()
        self.rows = rows or (lambda ids: np.tile(log_softmax(LOGITS), (len(ids), 1)))
        self.scored: list[list[int]] = []

    def prompt_ids(self, request: TextRequest) -> list[int]:
        return [4]

    async def score_async(self, prompt_ids: list[int], completion_ids: list[int]) -> np.ndarray:
        self.scored.append(list(completion_ids))
        return self.rows(list(completion_ids)).astype(np.float32)


RAW_LOGPROBS = log_softmax(LOGITS)


class StartableReference(FakeReference):
    """A ``FakeReference`` the checker's engine pool can start and close."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class BrokenImageReference:
    """An image reference that fails in a way no check expects (a bug on the checker's side)."""

    kind = "image"

    def __init__(self) -> None:
        self.calls = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def generate(self, request: object) -> list[bytes]:
        self.calls += 1
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
