"""The one worker thread of a local engine (transformers, diffusers, sentence-transformers).

Loading the model and every forward pass run on it, one at a time: the event loop stays free,
and torch state is never touched from two threads at once. ``run`` raises ``EngineError`` until
``start`` has run (and after ``close``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from inference.base import EngineError

T = TypeVar("T")


class EngineThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    async def start(self, load: Callable[[], None]) -> None:
        """Start the thread and run ``load`` on it (the model then lives on this thread)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        await asyncio.get_running_loop().run_in_executor(self._executor, load)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)

    def run(self, work: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """``work(*args)`` on the engine's thread."""
        if self._executor is None:
            raise EngineError("the engine is not started")
        return asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
