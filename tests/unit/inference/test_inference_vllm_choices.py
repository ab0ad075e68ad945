"""``VllmTextEngine.generate``'s own logic without vLLM (not installed here): a stand-in for the
three vLLM names it imports (``SamplingParams`` validating greedy ``n`` the way vLLM 0.10's does,
``RequestOutputKind``, ``TokensPrompt``) and for the engine's output stream. What is checked is
ours: greedy ``n`` is asked as one choice and copied, and a vLLM ``ValueError`` is the request's
fault (``EngineInputError``, the miner's 400), not an engine failure (500)."""

from __future__ import annotations

import enum
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from inference.base import ChoiceEnd, EngineError, EngineInputError, TextRequest, TokenEvent
from inference.vllm_text import VllmTextEngine


class _SamplingParams:
    def __init__(self, **fields: Any) -> None:
        if fields["n"] > 1 and fields["temperature"] < 1e-5:
            raise ValueError(f"n must be 1 when using greedy sampling, got {fields['n']}.")
        self.fields = fields


@dataclass
class _StructuredOutputs:
    grammar: str


@dataclass
class _Logprob:
    logprob: float


@dataclass
class _Completion:
    index: int
    token_ids: list[int]
    logprobs: list[dict[int, _Logprob]]
    text: str
    finish_reason: str | None


@dataclass
class _Output:
    outputs: list[_Completion]


@dataclass
class _Engine:
    fail_on_add: str | None = None
    params: list[Any] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)

    def generate(self, prompt: Any, params: Any, request_id: str) -> Any:
        self.params.append(params)

        async def stream() -> Any:
            if self.fail_on_add:
                raise ValueError(self.fail_on_add)
            for index in range(params.fields["n"]):
                yield _Output([_Completion(index, [5], [{5: _Logprob(-0.5)}], "a", None)])
            for index in range(params.fields["n"]):
                yield _Output([_Completion(index, [6], [{6: _Logprob(-0.25)}], "b", "length")])

        return stream()

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


class _Table:
    def text(self, token_id: int) -> str:
        return f"t{token_id}"

    def raw(self, token_id: int) -> bytes:
        return f"t{token_id}".encode()


@pytest.fixture
def engine(monkeypatch) -> tuple[VllmTextEngine, _Engine]:
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = _SamplingParams  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.RequestOutputKind = enum.Enum("RequestOutputKind", "DELTA")  # type: ignore[attr-defined]
    sampling.StructuredOutputsParams = _StructuredOutputs  # type: ignore[attr-defined]
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict  # type: ignore[attr-defined]
    for name, module in (
        ("vllm", vllm),
        ("vllm.sampling_params", sampling),
        ("vllm.inputs", inputs),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    text = VllmTextEngine("m")
    backend = _Engine()
    text._engine, text._table, text.context_length = backend, _Table(), 1000  # type: ignore[assignment]
    monkeypatch.setattr(text, "prompt_ids", lambda request: [1, 2, 3])
    return text, backend


async def collect(text: VllmTextEngine, request: TextRequest) -> list[Any]:
    return [event async for event in text.generate(request)]


async def test_greedy_n_runs_one_choice_and_copies_it(engine):
    text, backend = engine
    events = await collect(text, TextRequest(prompt="x", max_tokens=2, temperature=0.0, n=3))
    assert backend.params[-1].fields["n"] == 1
    tokens = [(e.choice, e.token_id, e.logprob) for e in events if isinstance(e, TokenEvent)]
    assert tokens == [(c, 5, -0.5) for c in range(3)] + [(c, 6, -0.25) for c in range(3)]
    assert sorted(e.choice for e in events if isinstance(e, ChoiceEnd)) == [0, 1, 2]
    assert backend.aborted == []
    await collect(text, TextRequest(prompt="x", max_tokens=2, temperature=0.8, n=3))
    assert backend.params[-1].fields["n"] == 3


async def test_vllm_value_errors_are_the_requests_fault(engine, monkeypatch):
    text, backend = engine

    def refuse(request: TextRequest) -> Any:
        return _SamplingParams(n=2, temperature=0.0)

    backend.fail_on_add = "prompt too long"
    with pytest.raises(EngineInputError, match="prompt too long") as caught:
        await collect(text, TextRequest(prompt="x", max_tokens=2, temperature=1.0))
    assert isinstance(caught.value, EngineError)
    monkeypatch.setattr(text, "_sampling_params", refuse)
    with pytest.raises(EngineInputError, match="greedy sampling"):
        await collect(text, TextRequest(prompt="x", max_tokens=2))


async def test_a_constraint_becomes_vllms_structured_outputs(engine):
    from inference.base import Constraint
    from inference.grammars import grammar_text

    text, backend = engine
    constraint = Constraint(schema='{"type": "object", "properties": {"a": {"type": "integer"}}}')
    await collect(text, TextRequest(prompt="x", max_tokens=2, constraint=constraint))
    assert backend.params[-1].fields["structured_outputs"] == _StructuredOutputs(
        grammar=grammar_text(constraint)
    )
    await collect(text, TextRequest(prompt="x", max_tokens=2))
    assert "structured_outputs" not in backend.params[-1].fields
