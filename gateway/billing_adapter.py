"""Billing behind the gateway's two seams: ``BillingAuthenticator`` (API keys from the database,
no database read per request while cached) and ``BillingAccounting`` (rate limits, the credit
hold before dispatch, the settle after), plus ``start_billing``, which builds them in the app's
lifespan (database engine, ``billing.Billing``, the key-invalidation listener, the sweeper).

Per request, in order (``docs/billing.md``):

1. ``authenticate``: key → ``KeyContext`` (401 unknown/revoked/expired, 403 suspended account).
2. the gateway validates the body and resolves the model (400, 404).
3. ``admit``: the key's model allowlist (403), the rate limits (429, ``Retry-After``), the hold
   (402 ``insufficient_quota`` / ``spend_cap_exceeded``; the TPM estimate is given back). The
   returned ``Hold.headers`` (``x-ratelimit-*``, ``x-sn19-hold``, ``x-sn19-balance``) go on
   every response from here on, errors included.
4. the gateway dispatches to miners and relays.
5. ``settle``: charge the delivered usage and release the rest (``ok``, ``partial`` → status
   ``upstream_error``, ``cancelled`` → ``client_disconnected``), or release everything when
   nothing was delivered (``error``, before the 5xx is sent). The TPM bucket is corrected to the
   real usage in the background (batched per key). Returns ``x-sn19-cost`` and
   ``x-sn19-balance``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from billing import (
    Billing,
    BillingApi,
    BillingService,
    KeyAuthenticator,
    KeyContext,
    KeyHasher,
    RateLimiter,
    Usage,
    cost,
    estimate_chat,
    estimate_embedding,
    format_credits,
    run_sweeper,
)
from billing import Hold as BillingHold
from core.db.engine import Database
from core.errors import AppError, AuthenticationFailed
from core.settings import Settings
from core.shutdown import push_bounded
from gateway.accounting import CostEstimate, DeliveredUsage, Hold
from gateway.auth import Caller, api_key_from
from protocol.catalog import Catalog, Task

log = logging.getLogger(__name__)

# TPM corrections are batched per key over this long.
CORRECT_EVERY_S = 0.05
NO_KEY = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."


class BillingDown(AppError):
    """The database could not take the hold: nothing was charged, the client may retry."""

    status_code = 503
    openai_type = "server_error"
    default_code = "billing_unavailable"


class BillingAuthenticator:
    """API keys resolved by ``billing.KeyAuthenticator`` (in-process cache → Redis → DB)."""

    def __init__(self, keys: KeyAuthenticator) -> None:
        self._keys = keys
        # The Caller of each cached KeyContext, rebuilt only when the context object changes.
        self._callers: dict[int, tuple[KeyContext, Caller]] = {}

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        raw = api_key_from(headers)
        if raw is None:
            raise AuthenticationFailed(NO_KEY)
        ctx = await self._keys.authenticate(raw)
        cached = self._callers.get(ctx.key_id)
        if cached is not None and cached[0] is ctx:
            return cached[1]
        caller = Caller(
            key_id=str(ctx.key_id),
            account_id=str(ctx.account_id),
            allowed_models=frozenset(ctx.allowed_models)
            if ctx.allowed_models is not None
            else None,
            context=ctx,
        )
        if len(self._callers) > 100_000:
            self._callers.clear()
        self._callers[ctx.key_id] = (ctx, caller)
        return caller


def billed_estimate(task: Task, estimate: CostEstimate) -> Usage:
    """The most ``estimate`` may use, in billing's units (chat: (prompt + max output) × n)."""
    if task.kind == "image":
        return Usage(images=estimate.images, steps=estimate.steps)
    if task.kind == "embedding":
        return estimate_embedding(estimate.input_tokens)
    return estimate_chat(estimate.input_tokens, estimate.max_output_tokens, estimate.n)


@dataclass(frozen=True)
class _Admitted:
    """What the gateway's ``Hold.context`` carries for billing."""

    hold: BillingHold
    key: KeyContext
    tokens: int


class BillingAccounting:
    def __init__(
        self, keys: KeyAuthenticator, service: BillingService, limiter: RateLimiter | None
    ) -> None:
        self._keys = keys
        self._service = service
        self._limiter = limiter
        self._background: set[asyncio.Task[None]] = set()
        # Pending TPM corrections per key id: (key, tokens to give back; negative takes).
        self._corrections: dict[int, tuple[KeyContext, int]] = {}
        self._flush: asyncio.TimerHandle | None = None

    async def admit(
        self, caller: Caller, task: Task, estimate: CostEstimate, *, request_id: str
    ) -> Hold:
        key = caller.context
        if not isinstance(key, KeyContext):
            raise AuthenticationFailed("This API key is not a billing key.")
        self._keys.authorize(key, task.id)
        usage = billed_estimate(task, estimate)
        limiter = self._limiter
        headers: dict[str, str] = {}
        if limiter is not None:
            headers = (await limiter.admit(key, usage.tokens)).headers()
        try:
            hold = await self._service.hold(key, task, usage, request_id=request_id)
        except AppError as exc:  # 402 / 403: the request will not run
            self._give_back(key, usage.tokens, 0)
            exc.headers = {**headers, **exc.headers}
            raise
        except Exception as exc:
            self._give_back(key, usage.tokens, 0)
            log.exception("billing: could not take a hold for %s", request_id)
            raise BillingDown(
                "Billing is temporarily unavailable; nothing was charged. Retry shortly.",
                headers={**headers, "retry-after": "1"},
            ) from exc
        headers.update(hold.headers())
        return Hold(
            request_id=request_id,
            caller=caller,
            task_id=task.id,
            estimate=estimate,
            headers=headers,
            context=_Admitted(hold, key, usage.tokens),
        )

    async def settle(
        self,
        hold: Hold,
        usage: DeliveredUsage,
        *,
        outcome: str,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> dict[str, str]:
        """A release (nothing delivered) is awaited: the 5xx that follows must not leave before
        it. A charge runs in the background, off the response's latency: its headers are
        computed here from the hold (the cost is exactly what the settle will charge; the
        balance is the one after the hold plus this request's refund, which concurrent
        requests of the same account may since have moved)."""
        admitted: _Admitted = hold.context
        delivered = Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            images=usage.images,
            steps=usage.steps,
        )
        status = _STATUS.get(outcome, outcome)
        nothing = not (delivered.output_tokens or delivered.images)
        if outcome == "error" or (outcome != "ok" and nothing):
            status = hold.failure or status
            return await self._release(admitted, delivered, status, miner_hotkey, latency_ms)
        held = admitted.hold
        charged = min(cost(held.kind, held.price, delivered), held.amount)
        self._spawn(self._settle(admitted, delivered, status, miner_hotkey, latency_ms))
        return {
            "x-sn19-cost": format_credits(charged),
            "x-sn19-balance": format_credits(held.balance + held.amount - charged),
        }

    async def _release(
        self,
        admitted: _Admitted,
        usage: Usage,
        status: str,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> dict[str, str]:
        try:
            settlement = await self._service.release(
                admitted.hold,
                reason=status,
                status=status,
                usage=usage,
                miner_hotkey=miner_hotkey,
                latency_ms=latency_ms,
            )
        except Exception:
            # The hold stays open and the sweeper releases it: nothing is charged either way.
            log.exception("billing: could not release hold %s", admitted.hold.id)
            return {}
        self._give_back(admitted.key, admitted.tokens, 0)
        return settlement.headers()

    async def _settle(
        self,
        admitted: _Admitted,
        usage: Usage,
        status: str,
        miner_hotkey: str | None,
        latency_ms: int,
    ) -> None:
        try:
            await self._service.settle(
                admitted.hold,
                usage,
                miner_hotkey=miner_hotkey,
                latency_ms=latency_ms,
                status=status,
            )
        except Exception:
            # The hold stays open and the sweeper releases it: the customer is not charged.
            log.exception("billing: could not settle hold %s", admitted.hold.id)
            return
        self._give_back(admitted.key, admitted.tokens, usage.tokens)

    def _give_back(self, key: KeyContext, estimated: int, used: int) -> None:
        """Correct the TPM bucket to the real usage: summed per key and sent to Redis at most
        every ``CORRECT_EVERY_S`` (one call per key and interval, not one per request)."""
        if self._limiter is None or estimated == used or not key.tpm_limit:
            return
        _, pending = self._corrections.get(key.key_id, (key, 0))
        self._corrections[key.key_id] = (key, pending + estimated - used)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(
                CORRECT_EVERY_S, self._send_corrections
            )

    def _send_corrections(self) -> None:
        self._flush = None
        corrections, self._corrections = self._corrections, {}
        limiter = self._limiter
        if limiter is None or not corrections:
            return

        async def send() -> None:
            for key, delta in corrections.values():
                await limiter.correct(key, delta, 0)

        self._spawn(send())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the settles still running, then send the last corrections (at shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
        if self._flush is not None:
            self._flush.cancel()
        self._send_corrections()
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)


_STATUS = {"ok": "ok", "partial": "upstream_error", "cancelled": "client_disconnected"}


@dataclass
class GatewayBilling:
    """What the app uses: the two seams and the HTTP endpoints' handlers."""

    billing: Billing
    db: Database
    authenticator: BillingAuthenticator
    accounting: BillingAccounting
    api: BillingApi


def check_billing_settings(settings: Settings) -> None:
    """Fail fast (``ConfigError``) on settings billing cannot start with."""
    KeyHasher.from_settings(settings)


async def start_billing(
    settings: Settings, catalog: Catalog, redis: Any, stack: AsyncExitStack
) -> GatewayBilling:
    """Billing for the gateway process, closed by ``stack``: a database engine, the key
    listener, and the hold sweeper (every replica runs one; they are safe together)."""
    from core.db.migrate import require_head

    await require_head(settings.database_url)
    db = Database.from_url(settings.database_url, settings.database)
    push_bounded(stack, "billing database", db.dispose)
    billing = Billing.create(settings, catalog, db, redis, fast_path=True)
    await billing.start()
    push_bounded(stack, "billing", billing.aclose)
    stop = asyncio.Event()
    sweeper = asyncio.get_running_loop().create_task(
        run_sweeper(billing.service, interval_s=settings.billing.sweep_interval_s, stop=stop),
        name="billing-hold-sweeper",
    )

    async def stop_sweeper() -> None:
        stop.set()
        try:
            await asyncio.wait_for(sweeper, 10)
        except (TimeoutError, asyncio.CancelledError):
            sweeper.cancel()

    push_bounded(stack, "hold sweeper", stop_sweeper, timeout_s=15.0)
    accounting = BillingAccounting(billing.authenticator, billing.service, billing.limiter)
    push_bounded(stack, "pending settles", accounting.drain, timeout_s=15.0)
    return GatewayBilling(
        billing=billing,
        db=db,
        authenticator=BillingAuthenticator(billing.authenticator),
        accounting=accounting,
        api=billing.api,
    )
