"""Loading a causal language model for ``inference.transformers_text``: the built-in tiny
Llama or a local model (directory or Hugging Face cache; never downloaded), on its device, with
what generation needs to know about it (end-of-sequence ids, context, the KV-cache argument)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.base import EngineError


@dataclass(frozen=True)
class LoadedLM:
    model: Any
    tokenizer: Any
    # The forward() keyword that takes the KV cache ("cache" in newer transformers).
    cache_kwarg: str
    eos: frozenset[int]
    # The model's own context length (max position embeddings; huge when it has none).
    context: int


def load_causal_lm(
    reference: str, *, revision: str | None, dtype: str, device: str, threads: int | None
) -> LoadedLM:
    import torch

    if threads:
        torch.set_num_threads(threads)
    if reference == "builtin:tiny-llama":
        from inference.tiny import build_tiny_llama

        model, tokenizer = build_tiny_llama()
        if dtype not in ("auto", "float32"):
            # The dev model in a miner's precision (bfloat16, float16): same weights, rounded.
            model = model.to(getattr(torch, dtype))
    else:
        model, tokenizer = _load_pretrained(reference, revision, dtype)
    model = model.to(device).eval()
    parameters = inspect.signature(model.forward).parameters
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = model.config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(int(tokenizer.eos_token_id))
    return LoadedLM(
        model=model,
        tokenizer=tokenizer,
        cache_kwarg="cache" if "cache" in parameters else "past_key_values",
        eos=frozenset(int(token) for token in eos_ids),
        context=int(getattr(model.config, "max_position_embeddings", 0) or 0) or 1 << 30,
    )


def output_cache(output: Any) -> Any:
    """The KV cache of a forward pass's output (its name moved between transformers versions)."""
    cache = getattr(output, "cache", None)
    if cache is None:
        cache = getattr(output, "past_key_values", None)
    if cache is None:
        raise EngineError("the model returned no KV cache")
    return cache


def _load_pretrained(reference: str, revision: str | None, dtype: str) -> tuple[Any, Any]:
    """A local model directory or a repo already in the Hugging Face cache (never downloads)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
    local = Path(reference).expanduser()
    source = str(local) if local.is_dir() else reference
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            source, revision=revision, local_files_only=True, dtype=torch_dtype
        )
    except OSError as exc:
        raise EngineError(
            f"model {reference!r} is neither a local directory nor in the local Hugging Face "
            f"cache (engines never download; fetch it first, e.g. `hf download {reference}`): "
            f"{exc}"
        ) from exc
    return model, tokenizer
