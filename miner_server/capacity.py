"""What this miner offers a validator for the coming period (``POST /v1/capacity``).

A policy turns the validator's public task list into a ``CapacityResponse``, for tasks this miner
serves whose kind and model match the validator's. Two ship (``capacity_policy`` setting):

- ``StakeShareCapacity`` (default; upstream's reference policy, SPEC §2): each task's configured
  volume and concurrency × the validator's share of stake (the stake gate computed it; see
  ``miner_server.stakes``), concurrency at least 1; the volume is also clamped to the
  validator's own ``max_capacity``. The shares of all admitted validators sum to 1, so the
  miner's capacity is divided among them, not promised to each in full.
- ``StaticCapacity`` (``full``): every validator is offered the whole configured volume.

Miners with other ideas implement ``CapacityPolicy``.
"""

from __future__ import annotations

import math
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
        return self._offer(request, 1.0)

    def _offer(self, request: CapacityRequest, share: float) -> CapacityResponse:
        capacities: dict[str, TaskCapacity] = {}
        for public in request.tasks:
            mine = self.offers.get(public.id)
            # A task id that names another kind or model is not the task this miner serves.
            if mine is None or public.kind != mine.task.kind:
                continue
            if public.model != mine.task.engine.model:
                continue
            capacities[public.id] = TaskCapacity(
                volume=min(mine.volume * share, public.max_capacity),
                concurrency=validator_quota(mine.concurrency, share),
            )
        return CapacityResponse(capacities=capacities, miner_version=self.version)


class StakeShareCapacity(StaticCapacity):
    """The configured offer × the validator's stake share."""

    def offer(self, caller: Caller, request: CapacityRequest) -> CapacityResponse:
        return self._offer(request, min(max(caller.share, 0.0), 1.0))


def validator_quota(limit: int, share: float) -> int:
    """A validator's stake-proportional share of ``limit`` slots: at least one."""
    return max(1, min(limit, math.floor(limit * max(share, 0.0) + 1e-9)))
