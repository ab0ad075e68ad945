"""The billing seam: admission before dispatch, settlement after.

``Accounting.admit`` runs after validation and before any miner is asked, with the request's
maximum cost (``CostEstimate``: prompt tokens + max output tokens × n; images n × steps;
embeddings input tokens). Billing's implementation checks the key's rate limits and places a
credit hold there (raising ``RateLimited`` / ``InsufficientQuota`` / ``PermissionDenied``).
``Accounting.settle`` runs once per admitted request after the response is done, with what was
actually delivered (``DeliveredUsage``; zero when the request failed before any output), and
converts the hold into a charge. When nothing was delivered (outcome ``error``) it runs BEFORE
the error response is sent, so an SDK retrying a 5xx never pays twice; ``Hold.failure`` then
says why (the error's code).

``UnmeteredAccounting`` is billing-off mode: nothing is charged, the caller's model allowlist is
still enforced, and settlements are only counted.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import msgspec

from core.errors import PermissionDenied
from gateway.auth import Caller
from protocol.catalog import Task

log = logging.getLogger(__name__)


class CostEstimate(msgspec.Struct, frozen=True):
    """The most a request can cost, in the task's units."""

    input_tokens: int = 0
    max_output_tokens: int = 0
    n: int = 1
    images: int = 0
    steps: int = 0

    @property
    def max_tokens(self) -> int:
        return self.input_tokens + self.max_output_tokens * self.n


class DeliveredUsage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    steps: int = 0


class Hold(msgspec.Struct):
    """An admitted request. Billing keeps its own hold (id, amount) in ``context``.

    ``headers`` go on every response of the request, errors included (billing: the
    ``x-ratelimit-*`` headers; for streams, whose cost is not known when the headers leave,
    the held amount and balance)."""

    request_id: str
    caller: Caller
    task_id: str
    estimate: CostEstimate
    headers: dict[str, str] = {}
    context: Any = None
    # Why nothing was delivered (the error code, e.g. ``no_capacity``), set before a settle
    # with outcome ``error``.
    failure: str | None = None


class Accounting(Protocol):
    async def admit(
        self, caller: Caller, task: Task, estimate: CostEstimate, *, request_id: str
    ) -> Hold: ...

    async def settle(
        self,
        hold: Hold,
        usage: DeliveredUsage,
        *,
        outcome: str,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> dict[str, str]:
        """Charge what was delivered; ``outcome``: ``ok``, ``error`` (nothing delivered: release
        the hold), ``partial`` (a stream the miner cut short) or ``cancelled`` (the client went
        away; it pays for what was delivered until then). Returns
        headers for the response when it has not started yet (billing: the cost and the
        balance), else they are dropped. Called exactly once per admitted request."""


class UnmeteredAccounting:
    """Billing off: admit every authenticated caller allowed the model, charge nothing."""

    def __init__(self) -> None:
        self.settled = 0

    async def admit(
        self, caller: Caller, task: Task, estimate: CostEstimate, *, request_id: str
    ) -> Hold:
        if caller.allowed_models is not None and task.id not in caller.allowed_models:
            raise PermissionDenied(f"This API key may not use the model '{task.id}'.")
        return Hold(request_id=request_id, caller=caller, task_id=task.id, estimate=estimate)

    async def settle(
        self,
        hold: Hold,
        usage: DeliveredUsage,
        *,
        outcome: str,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> dict[str, str]:
        self.settled += 1
        return {}
