"""The gateway's seam with billing: admit a request before any miner is asked, settle it exactly
once after.

Per request (docs/billing.md):

1. ``admit(key, task, estimate, request_id=...)``: the key's model allowlist (403), its rate
   limits (429 with ``Retry-After``), the credit hold (402 ``insufficient_quota`` /
   ``spend_cap_exceeded``; the TPM estimate is given back). ``Admission.headers``
   (``x-ratelimit-*``, ``x-sn19-hold``, ``x-sn19-balance``) go on every response of the request
   from then on, errors included.
2. the gateway dispatches to miners and relays the answer.
3. ``settle(admission, delivered, delivery, ...)``, exactly once. ``OK``, ``PARTIAL`` (the miner
   broke off a started answer) and ``CANCELLED`` (the client went away) charge what was
   delivered: the database write runs in the background and the returned headers
   (``x-sn19-cost``, ``x-sn19-balance``) are computed from the hold. ``FAILED``, or nothing
   delivered, releases the hold and is awaited, so the 5xx that follows never leaves before it
   (an SDK retrying a 5xx never pays twice); ``failure`` (the error's code) is the usage record's
   status. Either way the key's TPM bucket is corrected to the real usage.

``BilledAccess`` is billing on; ``OpenAccess`` is billing off (static keys, nothing charged).
A settle that cannot reach the database leaves the hold open: the sweeper releases it, so the
customer is never charged for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from billing.costs import Usage, cost
from billing.errors import LedgerUnavailable
from billing.holds import Hold
from billing.keys.auth import KeyAuthenticator
from billing.keys.store import KeyContext
from billing.money import format_credits
from billing.ratelimit import RateLimiter, TokenCorrections
from billing.service import BillingService
from core.errors import AppError, AuthenticationFailed
from protocol.catalog import Task

log = logging.getLogger(__name__)


class Delivery(StrEnum):
    """How a request ended, for its bill (the value is the usage record's status)."""

    OK = "ok"
    PARTIAL = "upstream_error"
    CANCELLED = "client_disconnected"
    FAILED = "error"


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted request: what it may use, and (billing on) its hold and key."""

    request_id: str
    estimate: Usage
    headers: dict[str, str] = field(default_factory=dict)
    hold: Hold | None = None
    key: KeyContext | None = None
    # The rate-limit window bucket the request was counted in (its TPM correction goes there).
    second: int = 0


class Access(Protocol):
    async def admit(
        self, key: KeyContext | None, task: Task, estimate: Usage, *, request_id: str
    ) -> Admission: ...

    async def settle(
        self,
        admission: Admission,
        delivered: Usage,
        delivery: Delivery,
        *,
        failure: str | None = None,
        miner_hotkey: str | None = None,
        latency_ms: int = 0,
    ) -> dict[str, str]: ...


class OpenAccess:
    """Billing off: every authenticated request is admitted and nothing is charged."""

    def __init__(self) -> None:
        self.settled = 0

    async def admit(
        self, key: KeyContext | None, task: Task, estimate: Usage, *, request_id: str
    ) -> Admission:
        return Admission(request_id=request_id, estimate=estimate, key=key)

    async def settle(
        self,
        admission: Admission,
        delivered: Usage,
        delivery: Delivery,
        *,
        failure: str | None = None,
        miner_hotkey: str | None = None,
        latency_ms: int = 0,
    ) -> dict[str, str]:
        self.settled += 1
        return {}


class BilledAccess:
    """Rate limits, the hold and the settle on billing's own services."""

    def __init__(
        self, keys: KeyAuthenticator, service: BillingService, limiter: RateLimiter | None
    ) -> None:
        self._keys = keys
        self._service = service
        self._limiter = limiter
        self._corrections = TokenCorrections(limiter) if limiter is not None else None
        self._background: set[asyncio.Task[None]] = set()

    async def admit(
        self, key: KeyContext | None, task: Task, estimate: Usage, *, request_id: str
    ) -> Admission:
        if key is None:
            raise AuthenticationFailed("This API key is not a billing key.")
        self._keys.authorize(key, task.id)
        headers: dict[str, str] = {}
        second = 0
        if self._limiter is not None:
            decision = await self._limiter.admit(key, estimate.tokens)
            headers, second = decision.headers(), decision.second
        try:
            hold = await self._service.hold(key, task, estimate, request_id=request_id)
        except AppError as exc:  # 402 / 403: the request will not run
            self._give_back(key, estimate.tokens, 0, second)
            exc.headers = {**headers, **exc.headers}
            raise
        except Exception as exc:
            self._give_back(key, estimate.tokens, 0, second)
            log.exception("billing: could not take a hold for %s", request_id)
            raise LedgerUnavailable(
                "Billing is temporarily unavailable; nothing was charged. Retry shortly.",
                headers={**headers, "retry-after": "1"},
            ) from exc
        headers.update(hold.headers())
        return Admission(
            request_id=request_id,
            estimate=estimate,
            headers=headers,
            hold=hold,
            key=key,
            second=second,
        )

    async def settle(
        self,
        admission: Admission,
        delivered: Usage,
        delivery: Delivery,
        *,
        failure: str | None = None,
        miner_hotkey: str | None = None,
        latency_ms: int = 0,
    ) -> dict[str, str]:
        hold, key = admission.hold, admission.key
        assert hold is not None and key is not None, "settle of a request billing did not admit"
        nothing = not (delivered.output_tokens or delivered.images)
        if delivery is Delivery.FAILED or (delivery is not Delivery.OK and nothing):
            status = failure or delivery.value
            return await self._release(admission, delivered, status, miner_hotkey, latency_ms)
        charged = min(cost(hold.kind, hold.price, delivered), hold.amount)
        self._spawn(self._settle(admission, delivered, delivery, miner_hotkey, latency_ms))
        return {
            "x-sn19-cost": format_credits(charged),
            "x-sn19-balance": format_credits(hold.balance + hold.amount - charged),
        }

    async def _release(
        self,
        admission: Admission,
        delivered: Usage,
        status: str,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> dict[str, str]:
        hold, key = admission.hold, admission.key
        assert hold is not None and key is not None
        try:
            settlement = await self._service.release(
                hold,
                reason=status,
                status=status,
                usage=delivered,
                miner_hotkey=miner_hotkey,
                latency_ms=latency_ms,
            )
        except Exception:
            # The hold stays open and the sweeper releases it: nothing is charged either way.
            log.exception("billing: could not release hold %s", hold.id)
            return {}
        self._give_back(key, admission.estimate.tokens, 0, admission.second)
        return settlement.headers()

    async def _settle(
        self,
        admission: Admission,
        delivered: Usage,
        delivery: Delivery,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> None:
        hold, key = admission.hold, admission.key
        assert hold is not None and key is not None
        try:
            await self._service.settle(
                hold,
                delivered,
                miner_hotkey=miner_hotkey,
                latency_ms=latency_ms,
                status=delivery.value,
            )
        except Exception:
            # The hold stays open and the sweeper releases it: the customer is not charged.
            log.exception("billing: could not settle hold %s", hold.id)
            return
        self._give_back(key, admission.estimate.tokens, delivered.tokens, admission.second)

    def _give_back(self, key: KeyContext, estimated: int, used: int, second: int) -> None:
        if self._corrections is not None and second:
            self._corrections.give_back(key, estimated, used, second=second)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the settles still running, then send the last corrections (at shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
        if self._corrections is not None:
            await self._corrections.drain(timeout)
