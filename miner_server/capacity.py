"""What this miner offers a validator for the coming period (``POST /v1/capacity``).

A policy turns the validator's public task list into a ``CapacityResponse``. The bundled
``StaticCapacity`` offers every validator the configured volume of each task it serves (default:
the task's ``max_capacity``), clamped to the validator's own ``max_capacity``; the stake-split
policy of SPEC §2 (volume × the validator's share of stake) will take the metagraph as one more
collaborator and implement the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from miner_server.auth import Caller
from protocol.catalog import Task
from protocol.miner import CapacityRequest, CapacityResponse, TaskCapacity


class CapacityPolicy(Protocol):
    def offer(self, caller: Caller, request: CapacityRequest) -> CapacityResponse: ...


@dataclass(frozen=True, slots=True)
class TaskOffer:
    task: Task
    volume: float
    concurrency: int


class StaticCapacity:
    """The same offer to every validator."""

    def __init__(self, offers: dict[str, TaskOffer], *, version: str | None = None) -> None:
        self.offers = offers
        self.version = version

    def offer(self, caller: Caller, request: CapacityRequest) -> CapacityResponse:
        del caller  # the stake-split policy will use it
        capacities: dict[str, TaskCapacity] = {}
        for public in request.tasks:
            mine = self.offers.get(public.id)
            # A task id that names another kind or model is not the task this miner serves.
            if mine is None or public.kind != mine.task.kind:
                continue
            if public.model != mine.task.engine.model:
                continue
            capacities[public.id] = TaskCapacity(
                volume=min(mine.volume, public.max_capacity), concurrency=mine.concurrency
            )
        return CapacityResponse(capacities=capacities, miner_version=self.version)
