"""The embedding check: shape, normalisation, then cosine against the recomputed vectors."""

from __future__ import annotations

import math

import pytest

from checker.embedding import check_embedding
from core.checks import EmbeddingResponse
from inference.base import EmbeddingResult
from protocol.catalog import CheckSpec

SPEC = CheckSpec()


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


class Reference:
    dimensions = 3

    def __init__(self) -> None:
        self.vectors = {"a": unit(1, 2, 3), "b": unit(3, -1, 0.5)}

    def count_tokens(self, inputs) -> int:
        return 5 * len(inputs)

    async def embed(self, inputs, *, dimensions=None) -> EmbeddingResult:
        return EmbeddingResult(vectors=[self.vectors[i] for i in inputs], prompt_tokens=0)


async def run(vectors, indexes=None, inputs=("a", "b")):
    response = EmbeddingResponse(indexes=indexes or list(range(len(vectors))), vectors=vectors)
    return await check_embedding(list(inputs), None, response, Reference(), SPEC)


async def test_same_vectors_in_any_order_pass() -> None:
    reference = Reference().vectors
    outcome = await run([reference["b"], reference["a"]], indexes=[1, 0])
    assert outcome.quality == 1.0 and outcome.work == 10
    assert outcome.evidence["min_cosine"] == pytest.approx(1.0)


async def test_a_slightly_different_vector_fails() -> None:
    reference = Reference().vectors
    off = unit(*(v + 0.05 * k for k, v in enumerate(reference["b"])))  # cosine ≈ 0.994
    outcome = await run([reference["a"], off])
    assert outcome.code == "cosine" and outcome.quality == 0.0 and "vector 1" in outcome.reason


@pytest.mark.parametrize(
    ("vectors", "indexes", "code"),
    [
        ([unit(1, 2, 3)], None, "vector_count"),
        ([unit(1, 2, 3), unit(1, 0, 0)], [0, 0], "vector_count"),
        ([unit(1, 2), unit(1, 0, 0)], None, "dimensions"),
        ([[math.nan, 0.0, 0.0], unit(1, 0, 0)], None, "not_finite"),
        ([[2.0, 0.0, 0.0], unit(1, 0, 0)], None, "not_normalized"),
    ],
)
async def test_shape_failures(vectors, indexes, code) -> None:
    assert (await run(vectors, indexes)).code == code
