"""What the app serves: one ``Served`` per task (catalog task, engine, in-flight limit), grouped
by kind so each route gets an engine of the right type without runtime checks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from inference.base import EmbeddingEngine, Engine, ImageEngine, TextEngine
from inference.health import engine_healthy
from miner_server.auth import Caller, Verifier
from miner_server.capacity import CapacityPolicy, validator_quota
from miner_server.errors import ConcurrencyLimit, InvalidRequest, ModelNotFound, ValidatorQuota
from miner_server.receipts import ReceiptSigner, StreamTrailer
from miner_server.responses import JSONBytes
from miner_server.stakes import Gate, OpenGate
from protocol.catalog import Task

E = TypeVar("E", TextEngine, ImageEngine, EmbeddingEngine)


class Slot:
    """One admitted request; ``release`` is idempotent so every exit path may call it."""

    __slots__ = ("_limiter", "_validator")

    def __init__(self, limiter: Limiter, validator: str | None) -> None:
        self._limiter: Limiter | None = limiter
        self._validator = validator

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is None:
            return
        limiter.in_flight -= 1
        validator = self._validator
        if validator is not None:
            left = limiter.by_validator.get(validator, 1) - 1
            if left > 0:
                limiter.by_validator[validator] = left
            else:
                limiter.by_validator.pop(validator, None)


class Limiter:
    """In-flight requests of one task; beyond ``limit`` a request is refused with 429
    ``concurrency_limit``, and beyond a validator's share of ``limit`` (its stake share, at
    least one slot) with 429 ``validator_quota``, so one validator cannot starve the others.

    The event loop is single-threaded, so plain counters are exact."""

    __slots__ = ("by_validator", "in_flight", "limit", "task_id")

    def __init__(self, task_id: str, limit: int) -> None:
        self.task_id = task_id
        self.limit = limit
        self.in_flight = 0
        self.by_validator: dict[str, int] = {}

    def acquire(self, caller: Caller | None = None) -> Slot:
        if self.in_flight >= self.limit:
            raise ConcurrencyLimit(self.task_id, self.limit)
        if caller is not None:
            quota = validator_quota(self.limit, caller.share)
            if self.by_validator.get(caller.hotkey, 0) >= quota:
                raise ValidatorQuota(self.task_id, quota)
        self.in_flight += 1
        if caller is None:
            return Slot(self, None)
        self.by_validator[caller.hotkey] = self.by_validator.get(caller.hotkey, 0) + 1
        return Slot(self, caller.hotkey)


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
    # Who may call (403 otherwise) and with which stake share.
    gate: Gate = field(default_factory=OpenGate)
    # Signs receipts on every successful signed response (None: responses go unsigned).
    receipts: ReceiptSigner | None = None
    chat: dict[str, Served[TextEngine]] = field(default_factory=dict)
    image: dict[str, Served[ImageEngine]] = field(default_factory=dict)
    embedding: dict[str, Served[EmbeddingEngine]] = field(default_factory=dict)
    # Engines this app built, in start order: started in the lifespan and closed after it.
    owned_engines: list[Engine] = field(default_factory=list)

    def json(self, caller: Caller, body: bytes) -> JSONBytes:
        """A 200 JSON response with this miner's receipt for ``caller``."""
        receipt = self.receipts.sign_body(caller, body) if self.receipts is not None else None
        return JSONBytes(body, receipt=receipt)

    def trailer(self, caller: Caller) -> StreamTrailer | None:
        return self.receipts.stream_trailer(caller) if self.receipts is not None else None

    @property
    def task_ids(self) -> list[str]:
        return [*self.chat, *self.image, *self.embedding]

    def tasks(self) -> list[Task]:
        return [
            *(served.task for served in self.chat.values()),
            *(served.task for served in self.image.values()),
            *(served.task for served in self.embedding.values()),
        ]

    async def degraded_tasks(self) -> list[str]:
        """The tasks whose engine says it cannot serve now (``inference.health``)."""
        served: list[Served[Any]] = [
            *self.chat.values(),
            *self.image.values(),
            *self.embedding.values(),
        ]
        answers = await asyncio.gather(*(engine_healthy(item.engine) for item in served))
        return [item.task.id for item, ok in zip(served, answers, strict=True) if not ok]

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
