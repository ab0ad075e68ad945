"""Build an engine from a catalog task's ``EngineSpec``.

Modules with heavy imports are imported here, lazily, only for the engine type asked for.
``overrides`` lets a miner replace the catalog's engine for a task (e.g. forward to the vLLM
server it already runs) without editing the catalog.
"""

from __future__ import annotations

import importlib
from typing import Any

from inference.base import Engine, EngineError
from protocol.catalog import EngineSpec, Task

# engine type -> (module, factory) per task kind
_FACTORIES: dict[tuple[str, str], tuple[str, str]] = {
    ("transformers", "chat"): ("inference.transformers_text", "TransformersTextEngine"),
    ("vllm", "chat"): ("inference.vllm_text", "VllmTextEngine"),
    ("forward", "chat"): ("inference.forward", "ForwardTextEngine"),
    ("instant", "chat"): ("inference.instant", "InstantTextEngine"),
    ("diffusers", "image"): ("inference.diffusers_image", "DiffusersImageEngine"),
    ("forward", "image"): ("inference.forward_media", "ForwardImageEngine"),
    ("sentence-transformers", "embedding"): ("inference.sentence_embed", "SentenceEmbeddingEngine"),
    ("transformers", "embedding"): ("inference.sentence_embed", "SentenceEmbeddingEngine"),
    ("forward", "embedding"): ("inference.forward_media", "ForwardEmbeddingEngine"),
}


def engine_factory(engine_type: str, kind: str) -> Any:
    try:
        module_name, attribute = _FACTORIES[(engine_type, kind)]
    except KeyError:
        raise EngineError(f"no {engine_type!r} engine for tasks of kind {kind!r}") from None
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def load_engine(task: Task, spec: EngineSpec | None = None, *, device: str | None = None) -> Engine:
    """Construct (not start) the engine for `task`; `spec` overrides the catalog's engine."""
    chosen = spec or task.engine
    factory = engine_factory(chosen.type, task.kind)
    engine: Engine = factory.from_spec(chosen, task, device=device)
    return engine
