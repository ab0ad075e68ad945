"""Reference engines, one per task, loaded lazily and kept while used.

The checker recomputes with the catalog's engine for the task, with two changes: text tasks need
teacher-forced scoring, which only the transformers engine has, so a text task served by vLLM
(or anything else) is checked with ``TransformersTextEngine`` on the same model; and the
checker's ``device`` / ``threads`` settings override the catalog's. Tasks whose model cannot be
loaded here (a ``forward`` engine pointing at someone's server) have no reference: their jobs
are acknowledged and recorded nowhere (SPEC §5: a check that cannot run records nothing).

At most ``max_loaded`` engines stay loaded; the least recently used one is closed first, and
the worker groups each batch by task, so a model is loaded once per batch at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from inference.base import EngineError
from inference.registry import load_engine
from protocol.catalog import EngineSpec, Task

log = logging.getLogger(__name__)

# Engine types whose model the checker can load itself, per task kind.
_CHECKABLE = {
    "chat": {"transformers", "vllm"},
    "image": {"diffusers"},
    "embedding": {"sentence-transformers", "transformers"},
}

Loader = Callable[[Task, EngineSpec, str | None], Any]


class ReferenceUnavailable(Exception):
    """The task has no reference engine here (its jobs are not scored)."""


def reference_spec(task: Task, *, threads: int = 0) -> EngineSpec:
    spec = task.engine
    if spec.type not in _CHECKABLE[task.kind]:
        raise ReferenceUnavailable(
            f"task {task.id}: a {spec.type!r} engine has no model the checker can load"
        )
    if task.kind == "chat" and spec.type != "transformers":
        options = {k: v for k, v in spec.options.items() if k in ("context_length",)}
        spec = EngineSpec(
            type="transformers",
            model=spec.model,
            revision=spec.revision,
            dtype=spec.dtype,
            options=options,
        )
    if threads:
        spec = msgspec.structs.replace(spec, options={**spec.options, "threads": threads})
    return spec


def _load(task: Task, spec: EngineSpec, device: str | None) -> Any:
    return load_engine(task, spec, device=device)


class ReferencePool:
    def __init__(
        self,
        *,
        device: str = "",
        threads: int = 0,
        max_loaded: int = 4,
        engines: Mapping[str, Any] | None = None,
        loader: Loader = _load,
    ) -> None:
        self.device = device or None
        self.threads = threads
        self.max_loaded = max(1, max_loaded)
        self._injected = dict(engines or {})
        self._loader = loader
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._users: defaultdict[str, int] = defaultdict(int)
        self._lock = asyncio.Lock()
        self.loads = 0

    @asynccontextmanager
    async def use(self, task: Task) -> AsyncIterator[Any]:
        """The task's started engine, never unloaded while the block runs."""
        engine = await self.get(task, hold=True)
        try:
            yield engine
        finally:
            self._users[task.id] -= 1

    async def get(self, task: Task, *, hold: bool = False) -> Any:
        """The started reference engine of ``task`` (loading it, and unloading the least
        recently used idle one beyond ``max_loaded``)."""
        async with self._lock:
            if hold:
                self._users[task.id] += 1
            try:
                return await self._get(task)
            except BaseException:
                if hold:
                    self._users[task.id] -= 1
                raise

    async def _get(self, task: Task) -> Any:
        engine = self._loaded.get(task.id)
        if engine is not None:
            self._loaded.move_to_end(task.id)
            return engine
        engine = self._injected.get(task.id)
        if engine is None:
            try:
                spec = reference_spec(task, threads=self.threads)
                engine = self._loader(task, spec, self.device)
            except EngineError as exc:
                raise ReferenceUnavailable(f"task {task.id}: {exc}") from exc
        try:
            await engine.start()
        except EngineError as exc:
            raise ReferenceUnavailable(f"task {task.id}: {exc}") from exc
        self.loads += 1
        log.info("reference engine for %s loaded", task.id)
        self._loaded[task.id] = engine
        for old_id in list(self._loaded):
            if len(self._loaded) <= self.max_loaded:
                break
            if old_id == task.id or self._users[old_id] > 0:
                continue
            old = self._loaded.pop(old_id)
            if old_id not in self._injected:
                await old.close()
                log.info("reference engine for %s unloaded", old_id)
        return engine

    async def close(self) -> None:
        async with self._lock:
            while self._loaded:
                _, engine = self._loaded.popitem()
                await engine.close()
