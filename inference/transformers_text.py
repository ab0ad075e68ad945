"""Text generation with Hugging Face transformers and our own sampling loop (CPU or one GPU).

This is the dev miners' engine and the checker's reference engine, so every number it reports
is defined here, not by ``model.generate``:

- sampling: ``inference.sampling.sample_token`` (temperature, then top_p nucleus, greedy at 0);
- choice ``i`` of a request draws from its own ``torch.Generator`` seeded with ``seed + i``
  (mod 2**64), so choice ``i`` equals an ``n=1`` request with seed ``seed + i``; a request
  without a seed gets a random one;
- logprobs: the raw ``log_softmax`` of the logits at temperature 1 (what OpenAI and vLLM report);
- an end-of-sequence token is reported as a last ``TokenEvent`` with empty text before
  ``ChoiceEnd("stop")`` (vLLM does the same), so the checker sees that EOS was drawn;
- visible text: incremental detokenization of the whole sequence through ``StopMatcher``.

Generation runs in one single-thread executor per engine (requests are served one at a time,
the event loop stays free) and streams events through a thread-safe hand-off; closing the async
iterator stops generation before the next token. Models are loaded with ``local_files_only``:
``builtin:tiny-llama`` is built in memory, anything else must be a local directory or already
be in the Hugging Face cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from inference.base import (
    ChoiceEnd,
    EngineError,
    EngineInputError,
    TextEvent,
    TextRequest,
    TokenEvent,
    TopToken,
)
from inference.grammars import Grammars
from inference.requests import chat_prompt_ids
from inference.sampling import IncrementalDetokenizer, TokenTable, sample_token
from inference.stops import StopMatcher
from inference.thread import EngineThread
from inference.transformers_load import load_causal_lm, output_cache
from protocol.catalog import EngineSpec, Task

if TYPE_CHECKING:
    import numpy
    import torch

MAX_TOP_LOGPROBS = 20
_DONE = object()


class _Cancelled(Exception):
    """The consumer went away; stop generating."""


class TransformersTextEngine:
    kind: Literal["chat"] = "chat"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        threads: int | None = None,
        context_length: int | None = None,
    ) -> None:
        self.model_ref = model
        self.revision = revision
        self.dtype = dtype
        self.device = device or "cpu"
        self.threads = threads
        self._context_limit = context_length
        self._thread = EngineThread("text-engine")
        self._model: Any = None
        self._tokenizer: Any = None
        self._table: TokenTable | None = None
        self._cache_kwarg = "past_key_values"
        self._eos: frozenset[int] = frozenset()
        self._grammars: Grammars | None = None
        self.context_length = 0

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> TransformersTextEngine:
        """Options: ``threads`` (torch intra-op threads, process-wide), ``device`` (when the
        caller gives none), ``context_length`` (default: the task's, capped by the model's)."""
        options = spec.options
        threads = options.get("threads")
        context = options.get("context_length")
        if context is None and task.text is not None:
            context = task.text.context_length
        option_device = options.get("device")
        return cls(
            spec.model,
            revision=spec.revision,
            dtype=spec.dtype,
            device=device or (str(option_device) if option_device else None),
            threads=int(threads) if threads is not None else None,
            context_length=int(context) if context is not None else None,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._model is not None:
            return
        await self._thread.start(self._load)

    async def close(self) -> None:
        await self._thread.close()
        self._model = None

    def _load(self) -> None:
        loaded = load_causal_lm(
            self.model_ref,
            revision=self.revision,
            dtype=self.dtype,
            device=self.device,
            threads=self.threads,
        )
        self._cache_kwarg = loaded.cache_kwarg
        self._eos = loaded.eos
        self.context_length = min(self._context_limit or loaded.context, loaded.context)
        self._tokenizer = loaded.tokenizer
        self._table = TokenTable(loaded.tokenizer)
        self._model = loaded.model

    # -- what the checker needs -----------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Width of the logits (the model's vocabulary, which may be padded past the
        tokenizer's)."""
        return int(self._loaded().config.vocab_size)

    @property
    def eos_token_ids(self) -> frozenset[int]:
        self._loaded()
        return self._eos

    @property
    def tokenizer(self) -> Any:
        self._loaded()
        return self._tokenizer

    def grammars(self) -> Grammars:
        """This model's grammars (``inference.grammars``), built on first use."""
        if self._grammars is None:
            self._grammars = Grammars(
                self._loaded_tokenizer(), vocab_size=self.vocab_size, stop_ids=self._eos
            )
        return self._grammars

    def token_text(self, token_id: int) -> str:
        self._loaded()
        assert self._table is not None
        return self._table.text(token_id)

    def prompt_ids(self, request: TextRequest) -> list[int]:
        """The prompt's token ids as the model sees them (``chat_prompt_ids``)."""
        return chat_prompt_ids(self._loaded_tokenizer(), request)

    def count_prompt_tokens(self, request: TextRequest) -> int:
        return len(self.prompt_ids(request))

    def score(self, prompt_ids: list[int], completion_ids: list[int]) -> numpy.ndarray:
        """Raw (temperature 1) logprobs of every vocabulary token at each completion position,
        from one teacher-forced pass: shape ``[len(completion_ids), vocab_size]``, float32.

        Row ``i`` is the distribution the model predicted ``completion_ids[i]`` from. Safe to call
        from any thread; ``score_async`` runs it on the engine's own worker."""
        import torch

        model = self._loaded()
        if not prompt_ids:
            raise EngineInputError("scoring needs at least one prompt token")
        if not completion_ids:
            empty: numpy.ndarray = torch.zeros((0, self.vocab_size), dtype=torch.float32).numpy()
            return empty
        ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=self.device)
        with torch.inference_mode():
            logits = model(input_ids=ids, use_cache=False).logits[0]
        start = len(prompt_ids) - 1
        rows = logits[start : start + len(completion_ids)].float()
        result: numpy.ndarray = torch.log_softmax(rows, dim=-1).cpu().numpy()
        return result

    async def score_async(self, prompt_ids: list[int], completion_ids: list[int]) -> numpy.ndarray:
        self._loaded()
        return await self._thread.run(self.score, prompt_ids, completion_ids)

    # -- generation -----------------------------------------------------------------------------

    def _validate(self, request: TextRequest, prompt: list[int]) -> None:
        if request.max_tokens < 1:
            raise EngineInputError("max_tokens must be at least 1")
        if request.n < 1:
            raise EngineInputError("n must be at least 1")
        if request.temperature < 0 or not 0 <= request.top_p <= 1:
            raise EngineInputError("temperature must be >= 0 and top_p within [0, 1]")
        if not 0 <= request.top_logprobs <= MAX_TOP_LOGPROBS:
            raise EngineInputError(f"top_logprobs must be within [0, {MAX_TOP_LOGPROBS}]")
        if not prompt:
            raise EngineInputError("the prompt is empty")
        vocab = self.vocab_size
        if any(not 0 <= token < vocab for token in prompt):
            raise EngineInputError(f"prompt token ids must be within [0, {vocab})")
        if len(prompt) + request.max_tokens > self.context_length:
            raise EngineInputError(
                f"this model's context is {self.context_length} tokens; the prompt has "
                f"{len(prompt)} and max_tokens asks for {request.max_tokens} more"
            )

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        prompt = self.prompt_ids(request)
        self._validate(request, prompt)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: Any) -> None:
            if cancelled.is_set():
                raise _Cancelled
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone
                cancelled.set()
                raise _Cancelled from None

        def work() -> None:
            item: Any = _DONE
            try:
                self._generate_sync(request, prompt, emit, cancelled)
            except _Cancelled:
                return
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
                item = exc
            with contextlib.suppress(_Cancelled):
                emit(item)

        future = self._thread.run(work)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    if isinstance(item, EngineError):
                        raise item
                    raise EngineError(f"generation failed: {item}") from item
                yield item
        finally:
            cancelled.set()
            if future.done():
                future.result()

    def _generate_sync(
        self,
        request: TextRequest,
        prompt: list[int],
        emit: Callable[[Any], None],
        cancelled: threading.Event,
    ) -> None:
        import torch

        model = self._loaded()
        base_seed = request.seed if request.seed is not None else secrets.randbits(63)
        with torch.inference_mode():
            prefill = model(
                input_ids=torch.tensor([prompt], device=self.device),
                use_cache=True,
                logits_to_keep=1,
            )
            prompt_cache = output_cache(prefill)
            prompt_logits = prefill.logits[0, -1].float()
            for choice in range(request.n):
                if cancelled.is_set():
                    raise _Cancelled
                last = choice == request.n - 1
                cache = prompt_cache if last else copy.deepcopy(prompt_cache)
                generator = torch.Generator(device=self.device)
                generator.manual_seed((base_seed + choice) % (1 << 64))
                self._choice(request, choice, prompt, prompt_logits, cache, generator, emit)

    def _choice(
        self,
        request: TextRequest,
        choice: int,
        prompt: list[int],
        logits: torch.Tensor,
        cache: Any,
        generator: torch.Generator,
        emit: Callable[[Any], None],
    ) -> None:
        import torch

        model, table = self._loaded(), self._table
        assert table is not None
        matcher = StopMatcher(request.stop)
        grammar = self.grammars().matcher(request.constraint) if request.constraint else None
        detokenizer = IncrementalDetokenizer(self._tokenizer, prompt, table=table)
        finish: Literal["stop", "length"] = "length"
        for step in range(request.max_tokens):
            logprobs = torch.log_softmax(logits, dim=-1)
            if grammar is not None:
                # Sampled under the grammar; the reported logprobs stay the model's own.
                logits = logits.clone()
                grammar.mask(logits)
            token = sample_token(logits, request.temperature, request.top_p, generator)
            if grammar is not None and not grammar.accept(token):
                raise EngineError(f"the grammar refused the sampled token {token}")
            top: tuple[TopToken, ...] = ()
            if request.top_logprobs:
                values, indices = torch.topk(logprobs, request.top_logprobs)
                top = tuple(
                    TopToken(
                        token_id=int(i),
                        token=table.text(int(i)),
                        logprob=float(v),
                        token_bytes=table.raw(int(i)),
                    )
                    for v, i in zip(values.tolist(), indices.tolist(), strict=True)
                )
            is_eos = token in self._eos
            text = "" if is_eos else matcher.push(detokenizer.push(token))
            emit(
                TokenEvent(
                    choice=choice,
                    token_id=token,
                    token=table.text(token),
                    text=text,
                    logprob=float(logprobs[token]),
                    token_bytes=table.raw(token),
                    top=top,
                )
            )
            if is_eos or matcher.stopped:
                finish = "stop"
                break
            if step + 1 < request.max_tokens:
                output = model(
                    input_ids=torch.tensor([[token]], device=self.device),
                    use_cache=True,
                    **{self._cache_kwarg: cache},
                )
                logits = output.logits[0, -1].float()
        tail = "" if matcher.stopped else matcher.push(detokenizer.flush())
        emit(ChoiceEnd(choice=choice, finish_reason=finish, text=tail + matcher.flush()))

    # -- helpers --------------------------------------------------------------------------------

    def _loaded(self) -> Any:
        if self._model is None:
            raise EngineError("the engine is not started")
        return self._model

    def _loaded_tokenizer(self) -> Any:
        self._loaded()
        return self._tokenizer
