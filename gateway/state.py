"""The app's long-lived collaborators, built in the lifespan and handed to handlers by DI."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from opentelemetry import trace

from billing import Access, Billing
from core.miners import Dispatcher, MinerStats
from core.settings import Settings
from core.telemetry import Telemetry
from core.tokens import TokenCounter
from gateway.auth import Authenticator
from gateway.hooks import CompletionHub
from gateway.metrics import GatewayMetrics
from gateway.selection import Selector
from gateway.slots import SlotQueue
from protocol.catalog import Catalog
from scoring import CounterBuffer


class Gateway:
    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        telemetry: Telemetry,
        authenticator: Authenticator,
        access: Access,
        hooks: CompletionHub,
        selector: Selector,
        slots: SlotQueue,
        dispatcher: Dispatcher,
        stats: MinerStats,
        counters: dict[str, TokenCounter],
        redis: Any,
        contenders: CounterBuffer | None,
        billing: Billing | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.telemetry = telemetry
        self.tracer: trace.Tracer = telemetry.tracer("sn19.gateway")
        self.metrics = GatewayMetrics(telemetry.registry)
        self.authenticator = authenticator
        # Admission before dispatch and the settle after (``billing.access``).
        self.access = access
        self.hooks = hooks
        self.selector = selector
        # Requests waiting for a miner slot when every miner of their task is busy.
        self.slots = slots
        self.dispatcher = dispatcher
        self.stats = stats
        self.counters = counters
        self.redis = redis
        # Every miner attempt's outcome, per contender (``gateway.exchange``), flushed to Redis
        # in the background. None: not counted.
        self.contenders = contenders
        # Billing (the /v1/billing/* handlers, provenance); None when billing is off.
        self.billing = billing
        self._background: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background (kept referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
