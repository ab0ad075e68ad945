"""Miner behaviours for the checker's tests, as text engines a real miner server runs.

``LoopEngine`` is an independent implementation of the dev chat model's sampling (the tiny Llama
with a KV cache, ``inference.sampling``'s distribution, the same detokenization and stop rules)
whose per-choice token plan can be overridden. Honest variants: ``BatchedEngine`` (every step
runs a padded batch of rows, as a batching server would: other GEMM shapes, other rounding).
Cheats: ``SmallerModelEngine`` (another, smaller tiny Llama), ``RandomTokensEngine``,
``FabricatedLogprobsEngine``, ``GreedyEngine`` (temperature 0 whatever was asked),
``SamplingEngine`` (temperature 1 when 0 was asked), ``PaddingEngine`` (never stops: when the
model emits its end-of-sequence token it is dropped and sampling continues with EOS masked),
``TruncatingEngine`` (cuts the answer short and claims ``length`` or ``stop``) and
``ReplayEngine`` (answers with what it generated for another prompt). Cheats on constrained
requests (``response_format`` JSON, a required or named ``tool_choice``): ``GrammarIgnoringEngine``
(decodes without the grammar's mask), ``FabricatedToolCallEngine`` (writes a well-formed call
with fixed, schema-valid arguments instead of sampling one) and ``SchemaViolatingEngine``
(decodes under a looser grammar: any JSON object, or any object as a call's arguments). Image
and embedding behaviours are in ``tests.support.cheats_media``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import msgspec

from inference.base import ChatTurn, ChoiceEnd, Constraint, TextEvent, TextRequest, TokenEvent
from inference.sampling import IncrementalDetokenizer, TokenTable, sample_token
from inference.stops import StopMatcher
from inference.transformers_text import TransformersTextEngine

Plan = tuple[list[int], list[float], Literal["stop", "length"]]


def build_smaller_llama(seed: int = 4321, layers: int = 1) -> tuple[Any, Any]:
    """A cheaper model than the dev reference: another seed, fewer layers, the same tokenizer,
    head size 64, peaked output and end-of-sequence direction (so it looks as trained)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from inference import tiny

    tokenizer = tiny.build_tiny_tokenizer()
    eot, end = tokenizer.convert_tokens_to_ids([tiny.EOT, tiny.END_OF_TEXT])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny.HIDDEN_SIZE,
        intermediate_size=tiny.INTERMEDIATE_SIZE,
        num_hidden_layers=layers,
        num_attention_heads=tiny.NUM_HEADS,
        num_key_value_heads=tiny.NUM_KV_HEADS,
        max_position_embeddings=tiny.MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[eot, end],
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(tiny.LM_HEAD_SCALE)
        direction = torch.tensor(tiny._EOS_DIRECTION, dtype=torch.float32)
        model.lm_head.weight[eot].add_(tiny.EOS_BIAS * direction)
    model.generation_config = GenerationConfig(eos_token_id=[eot, end])
    return model, tokenizer


class LoopEngine:
    """The dev chat model, sampled by our own loop; subclasses change the plan per choice."""

    kind: Literal["chat"] = "chat"

    def __init__(self, *, factory: Callable[[], tuple[Any, Any]] | None = None) -> None:
        from inference.tiny import build_tiny_llama

        self.factory = factory or build_tiny_llama
        # The reference engine's prompt handling (chat template, BOS), shared by every variant.
        self.prompts = TransformersTextEngine("builtin:tiny-llama")
        self.model: Any = None
        self.tokenizer: Any = None
        self.table: TokenTable | None = None
        self.eos: frozenset[int] = frozenset()
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self.model is not None:
            return
        await self.prompts.start()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cheat-engine")
        self.model, self.tokenizer = await asyncio.get_running_loop().run_in_executor(
            self._executor, self.factory
        )
        self.table = TokenTable(self.tokenizer)
        self.eos = self.prompts.eos_token_ids

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        await self.prompts.close()
        self.model = None

    def count_prompt_tokens(self, request: TextRequest) -> int:
        return self.prompts.count_prompt_tokens(request)

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(self._executor, self._events, request)
        for event in events:
            yield event

    # -- the plan ---------------------------------------------------------------------------

    def _events(self, request: TextRequest) -> list[TextEvent]:
        prompt = self.prompts.prompt_ids(request)
        seed = request.seed if request.seed is not None else random.getrandbits(62)
        events: list[TextEvent] = []
        for choice, (ids, logprobs, finish) in enumerate(self.plans(request, prompt, seed)):
            events.extend(self.render(request, prompt, choice, ids, logprobs, finish))
        return events

    def plans(self, request: TextRequest, prompt: list[int], seed: int) -> list[Plan]:
        return [self.plan(request, prompt, seed + choice) for choice in range(request.n)]

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        return self.sample(request, prompt, seed)

    def sample(
        self,
        request: TextRequest,
        prompt: list[int],
        seed: int,
        *,
        temperature: float | None = None,
        mask_eos: bool = False,
        prefix: list[int] | None = None,
        grammar: Constraint | None = None,
    ) -> Plan:
        """Sample one choice like the engine does (stops at EOS, a stop string, or max_tokens);
        ``prefix`` tokens are forced first; ``mask_eos`` never lets EOS be drawn; ``grammar``
        masks the logits under that constraint (the request's own is ignored)."""
        import torch

        walk = self.prompts.grammars().matcher(grammar) if grammar is not None else None

        temp = request.temperature if temperature is None else temperature
        generator = torch.Generator().manual_seed(seed % (1 << 64))
        ids: list[int] = []
        logprobs: list[float] = []
        matcher = StopMatcher(request.stop)
        detok = IncrementalDetokenizer(self.tokenizer, prompt, table=self.table)
        forced = list(prefix or [])
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt]), use_cache=True)
            cache, logits = out.past_key_values, out.logits[0, -1].float()
            for _step in range(request.max_tokens):
                raw = torch.log_softmax(logits, dim=-1)
                if forced:
                    token = forced.pop(0)
                else:
                    if mask_eos:
                        logits = logits.clone()
                        logits[list(self.eos)] = -torch.inf
                    if walk is not None:
                        logits = logits.clone()
                        walk.mask(logits)
                    token = sample_token(logits, temp, request.top_p, generator)
                if walk is not None:
                    walk.accept(token)
                ids.append(token)
                logprobs.append(float(raw[token]))
                if token in self.eos:
                    return ids, logprobs, "stop"
                matcher.push(detok.push(token))
                if matcher.stopped:
                    return ids, logprobs, "stop"
                out = self.model(
                    input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True
                )
                cache, logits = out.past_key_values, out.logits[0, -1].float()
        return ids, logprobs, "length"

    def render(
        self,
        request: TextRequest,
        prompt: list[int],
        choice: int,
        ids: list[int],
        logprobs: list[float],
        finish: Literal["stop", "length"],
    ) -> list[TextEvent]:
        """The events an engine emits for a token plan (visible text through the detokenizer
        and the stop matcher, as ``TransformersTextEngine`` does)."""
        assert self.table is not None
        matcher = StopMatcher(request.stop)
        detok = IncrementalDetokenizer(self.tokenizer, prompt, table=self.table)
        events: list[TextEvent] = []
        for token, logprob in zip(ids, logprobs, strict=True):
            eos = token in self.eos
            text = "" if eos else matcher.push(detok.push(token))
            events.append(
                TokenEvent(
                    choice=choice,
                    token_id=token,
                    token=self.table.text(token),
                    text=text,
                    logprob=logprob,
                    token_bytes=self.table.raw(token),
                )
            )
        tail = "" if matcher.stopped else matcher.push(detok.flush())
        events.append(ChoiceEnd(choice=choice, finish_reason=finish, text=tail + matcher.flush()))
        return events


# ---------------------------------------------------------------------------------------------
# Honest variants


class BatchedEngine(LoopEngine):
    """Honest, but every step runs a batch of ``rows`` identical sequences (a batching server's
    GEMM shapes): the same distribution up to float rounding."""

    def __init__(self, rows: int = 4) -> None:
        super().__init__()
        self.rows = rows

    def sample(self, request: TextRequest, prompt: list[int], seed: int, **kw: Any) -> Plan:
        import torch

        if kw:
            return super().sample(request, prompt, seed, **kw)
        generator = torch.Generator().manual_seed(seed % (1 << 64))
        ids: list[int] = []
        logprobs: list[float] = []
        matcher = StopMatcher(request.stop)
        detok = IncrementalDetokenizer(self.tokenizer, prompt, table=self.table)
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt] * self.rows), use_cache=True)
            cache, logits = out.past_key_values, out.logits[0, -1].float()
            for _step in range(request.max_tokens):
                raw = torch.log_softmax(logits, dim=-1)
                token = sample_token(logits, request.temperature, request.top_p, generator)
                ids.append(token)
                logprobs.append(float(raw[token]))
                if token in self.eos:
                    return ids, logprobs, "stop"
                matcher.push(detok.push(token))
                if matcher.stopped:
                    return ids, logprobs, "stop"
                out = self.model(
                    input_ids=torch.tensor([[token]] * self.rows),
                    past_key_values=cache,
                    use_cache=True,
                )
                cache, logits = out.past_key_values, out.logits[0, -1].float()
        return ids, logprobs, "length"


# ---------------------------------------------------------------------------------------------
# Cheats


class SmallerModelEngine(LoopEngine):
    def __init__(self) -> None:
        super().__init__(factory=build_smaller_llama)


class RandomTokensEngine(LoopEngine):
    """Random printable bytes with plausible logprobs, always the full ``max_tokens``."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        rng = random.Random(seed)
        ids = [rng.randrange(32, 127) for _ in range(request.max_tokens)]
        return ids, [-rng.uniform(0.01, 2.0) for _ in ids], "length"


class FabricatedLogprobsEngine(LoopEngine):
    """The right tokens, invented logprobs (plausible values, uniform in [-2.5, -0.01])."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        ids, _, finish = self.sample(request, prompt, seed)
        rng = random.Random(seed)
        return ids, [-rng.uniform(0.01, 2.5) for _ in ids], finish


class GreedyEngine(LoopEngine):
    """Greedy decoding whatever temperature was asked (cacheable, cheaper to batch)."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        return self.sample(request, prompt, seed, temperature=0.0)


class SamplingEngine(LoopEngine):
    """Temperature 1 when temperature 0 was asked."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        return self.sample(request, prompt, seed, temperature=request.temperature or 1.0)


class PaddingEngine(LoopEngine):
    """Never stops early: where the model ended its answer, the EOS is dropped and sampling goes
    on with EOS masked up to ``max_tokens`` (more tokens billed, a better speed metric).
    ``padded`` holds the seeds where padding changed the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.padded: set[int] = set()

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        ids, logprobs, finish = self.sample(request, prompt, seed)
        if finish == "length" or not ids or ids[-1] not in self.eos:
            return ids, logprobs, finish
        self.padded.add(seed)
        forced = ids[:-1]
        return self.sample(request, prompt, seed, mask_eos=True, prefix=forced)


class TruncatingEngine(LoopEngine):
    """Cuts each answer to 30-80 % of its tokens, claiming ``length`` (odd seeds) or ``stop``
    (even seeds)."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        ids, logprobs, finish = self.sample(request, prompt, seed)
        if ids and ids[-1] in self.eos:
            ids, logprobs = ids[:-1], logprobs[:-1]
        keep = max(1, int(len(ids) * random.Random(seed).uniform(0.3, 0.8)))
        claimed: Literal["stop", "length"] = "length" if seed % 2 else "stop"
        return ids[:keep], logprobs[:keep], claimed


REPLAY_PROMPTS = (
    "Write a short poem about the sea.",
    "What is the capital of France?",
    "Explain photosynthesis to a child.",
    "List three uses of a paperclip.",
)


class ReplayEngine(LoopEngine):
    """Answers with a cached answer to another prompt (same parameters)."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        other = REPLAY_PROMPTS[seed % len(REPLAY_PROMPTS)]
        if request.messages is not None:
            cached = msgspec.structs.replace(request, messages=(ChatTurn("user", other),))
        else:
            cached = msgspec.structs.replace(request, prompt=other, prompt_ids=None)
        return self.sample(cached, self.prompts.prompt_ids(cached), seed)


# ---------------------------------------------------------------------------------------------
# Cheats on constrained requests. The gateway refuses a constrained answer that ends (``stop``)
# without conforming, so these answers reach the checker when they conform or run to
# ``max_tokens`` (the gateway does not judge an answer cut by the client's budget).


class GrammarIgnoringEngine(LoopEngine):
    """Decodes without the constraint's mask (free text where JSON or a tool call was asked),
    never stopping early: every answer runs to ``max_tokens``."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        return self.sample(request, prompt, seed, mask_eos=True)


def _fixed_value(schema: Any) -> Any:
    """A fixed value valid under a simple schema (what a lazy miner writes as arguments)."""
    if not isinstance(schema, dict):
        return "x"
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = schema.get("required", list(properties))
        return {name: _fixed_value(properties.get(name)) for name in required}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return max(1, int(schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    return "Paris"[: int(schema.get("maxLength", 5))] or "P"


class FabricatedToolCallEngine(LoopEngine):
    """Answers a forced tool call (``tool_choice`` required or named) with a well-formed call to
    the first allowed tool, its arguments fixed (valid under the tool's schema, in the grammar's
    layout), then end-of-sequence; the logprobs are the model's own for those tokens. Other
    requests are answered honestly."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        constraint = request.constraint
        if constraint is None or not constraint.tools:
            return self.sample(request, prompt, seed, grammar=constraint)
        name, parameters = constraint.tools[0]
        arguments = json.dumps(_fixed_value(json.loads(parameters)))
        text = f'<tool_call>{{"name": {json.dumps(name)}, "arguments": {arguments}}}</tool_call>'
        forced = [
            *self.tokenizer.encode(text, add_special_tokens=False),
            self.tokenizer.eos_token_id,
        ]
        return self.sample(request, prompt, seed, prefix=forced[: request.max_tokens])


class SchemaViolatingEngine(LoopEngine):
    """Decodes under a looser grammar than asked: any JSON object for ``response_format``, any
    object as the arguments of a tool call (valid JSON, the schema ignored). A complete answer
    would be refused by the gateway's schema check, so it is padded with spaces to
    ``max_tokens`` instead of ending (an answer cut by ``length`` is not judged there)."""

    def plan(self, request: TextRequest, prompt: list[int], seed: int) -> Plan:
        constraint = request.constraint
        if constraint is None:
            return self.sample(request, prompt, seed)
        loose = json.dumps({"type": "object"})
        looser = msgspec.structs.replace(
            constraint,
            schema=None if constraint.schema is None else loose,
            tools=tuple((name, loose) for name, _ in constraint.tools),
        )
        ids, logprobs, finish = self.sample(request, prompt, seed, grammar=looser)
        if finish == "length" or ids[-1] not in self.eos:
            return ids, logprobs, finish
        space = self.tokenizer.encode(" ", add_special_tokens=False)[-1]
        padded = ids[:-1] + [space] * (request.max_tokens - len(ids) + 1)
        return self.sample(request, prompt, seed, prefix=padded)
