"""What the app serves: one ``Served`` per task (catalog task, engine, in-flight limit), grouped
by kind so each route gets an engine of the right type without runtime checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from inference.base import EmbeddingEngine, Engine, ImageEngine, TextEngine
from miner_server.auth import Verifier
from miner_server.capacity import CapacityPolicy
from miner_server.errors import ConcurrencyLimit, InvalidRequest, ModelNotFound
from protocol.catalog import Task

E = TypeVar("E", TextEngine, ImageEngine, EmbeddingEngine)


class Slot:
    """One admitted request; ``release`` is idempotent so every exit path may call it."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self._limiter: Limiter | None = limiter

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.in_flight -= 1


class Limiter:
    """In-flight requests of one task; beyond ``limit`` a request is refused with 429.

    The event loop is single-threaded, so a plain counter is exact."""

    __slots__ = ("in_flight", "limit", "task_id")

    def __init__(self, task_id: str, limit: int) -> None:
        self.task_id = task_id
        self.limit = limit
        self.in_flight = 0

    def acquire(self) -> Slot:
        if self.in_flight >= self.limit:
            raise ConcurrencyLimit(self.task_id, self.limit)
        self.in_flight += 1
        return Slot(self)


@dataclass(slots=True)
class Served(Generic[E]):
    task: Task
    engine: E
    limiter: Limiter


@dataclass(slots=True)
class MinerState:
    """App-lifetime state, provided to handlers as the ``miner`` dependency."""

    hotkey: str
    verifier: Verifier
    capacity: CapacityPolicy
    max_body_bytes: int
    chat: dict[str, Served[TextEngine]] = field(default_factory=dict)
    image: dict[str, Served[ImageEngine]] = field(default_factory=dict)
    embedding: dict[str, Served[EmbeddingEngine]] = field(default_factory=dict)
    # Engines this app built, in start order: started in the lifespan and closed after it.
    owned_engines: list[Engine] = field(default_factory=list)

    @property
    def task_ids(self) -> list[str]:
        return [*self.chat, *self.image, *self.embedding]

    def tasks(self) -> list[Task]:
        return [
            *(served.task for served in self.chat.values()),
            *(served.task for served in self.image.values()),
            *(served.task for served in self.embedding.values()),
        ]

    def chat_task(self, model: str) -> Served[TextEngine]:
        served = self.chat.get(model)
        if served is None:
            raise ModelNotFound(model)
        return served

    def embedding_task(self, model: str) -> Served[EmbeddingEngine]:
        served = self.embedding.get(model)
        if served is None:
            raise ModelNotFound(model)
        return served

    def image_task(self, model: str | None) -> Served[ImageEngine]:
        if model is None:
            if len(self.image) == 1:
                return next(iter(self.image.values()))
            raise InvalidRequest(
                "`model` is required: this miner serves several image tasks.", param="model"
            )
        served = self.image.get(model)
        if served is None:
            raise ModelNotFound(model)
        return served
