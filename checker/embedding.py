"""The embedding check (SPEC §5): recompute on the reference model, compare by cosine.

One vector per input with indexes 0..n-1, each of the requested width, finite and of unit
length (within ``NORM_TOLERANCE``; OpenAI and every engine here return normalised vectors); then
every vector's cosine with the reference's must reach ``embedding_cosine`` (0.999) → 1.0,
otherwise 0. Honest machines (other batch sizes, thread counts, kernels) stay above 0.99999.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from checker.outcome import CheckOutcome, failed, passed
from core.checks import EmbeddingResponse
from inference.base import EmbeddingResult, EngineInputError
from protocol.catalog import CheckSpec

NORM_TOLERANCE = 1e-3


class EmbeddingReference(Protocol):
    dimensions: int

    def count_tokens(self, inputs: list[str] | list[list[int]]) -> int: ...

    async def embed(
        self, inputs: list[str] | list[list[int]], *, dimensions: int | None = None
    ) -> EmbeddingResult: ...


def _norm(vector: list[float]) -> float:
    return math.sqrt(math.fsum(value * value for value in vector))


async def check_embedding(
    inputs: list[str] | list[list[int]],
    dimensions: int | None,
    response: EmbeddingResponse,
    reference: EmbeddingReference,
    spec: CheckSpec,
) -> CheckOutcome:
    evidence: dict[str, Any] = {"inputs": len(inputs)}
    try:
        work = float(reference.count_tokens(inputs))
    except EngineInputError as exc:
        return failed("bad_request", f"the reference cannot read these inputs: {exc}", evidence)
    width = dimensions or reference.dimensions
    evidence["dimensions"] = width
    problem = shape_failure(len(inputs), width, response)
    if problem is not None:
        code, reason = problem
        return failed(code, reason, evidence, work=work)
    ordered = [vector for _, vector in sorted(zip(response.indexes, response.vectors, strict=True))]
    try:
        result = await reference.embed(inputs, dimensions=dimensions)
    except EngineInputError as exc:
        return failed("bad_request", f"the reference cannot embed these inputs: {exc}", evidence)
    cosines = []
    for mine, theirs in zip(ordered, result.vectors, strict=True):
        denominator = _norm(mine) * _norm(theirs)
        dot = math.fsum(a * b for a, b in zip(mine, theirs, strict=True))
        cosines.append(dot / denominator if denominator > 0 else 0.0)
    worst = min(cosines)
    evidence.update(min_cosine=worst, mean_cosine=sum(cosines) / len(cosines))
    if worst < spec.embedding_cosine:
        index = cosines.index(worst)
        return failed(
            "cosine",
            f"vector {index} has cosine {worst:.6f} with the reference (< {spec.embedding_cosine})",
            evidence,
            work=work,
        )
    return passed(1.0, evidence, work=work)


def shape_failure(count: int, width: int, response: EmbeddingResponse) -> tuple[str, str] | None:
    """One finite unit vector of ``width`` per input, indexes 0..count-1."""
    if len(response.vectors) != count or len(response.indexes) != len(response.vectors):
        return "vector_count", f"{count} inputs, {len(response.vectors)} vectors"
    if sorted(response.indexes) != list(range(count)):
        return "vector_count", "vector indexes are not 0..n-1"
    for index, vector in sorted(zip(response.indexes, response.vectors, strict=True)):
        if len(vector) != width:
            return "dimensions", f"vector {index} has {len(vector)} dimensions, not {width}"
        if not all(math.isfinite(value) for value in vector):
            return "not_finite", f"vector {index} has a non-finite value"
        norm = _norm(vector)
        if abs(norm - 1.0) > NORM_TOLERANCE:
            return "not_normalized", f"vector {index} has length {norm:.6f}, not 1"
    return None
