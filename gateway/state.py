"""The app's long-lived collaborators, built in the lifespan and handed to handlers by DI."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from opentelemetry import trace

from billing import Billing, BillingApi
from core.db.engine import Database
from core.miners import Dispatcher, MinerStats
from core.settings import Settings
from core.telemetry import Telemetry
from core.tokens import TokenCounter
from gateway.accounting import Accounting
from gateway.auth import Authenticator
from gateway.hooks import CompletionHub
from gateway.metrics import GatewayMetrics
from gateway.selection import Selector
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
        accounting: Accounting,
        hooks: CompletionHub,
        selector: Selector,
        dispatcher: Dispatcher,
        stats: MinerStats,
        counters: dict[str, TokenCounter],
        redis: Any,
        billing: BillingApi | None = None,
        billing_system: Billing | None = None,
        db: Database | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.telemetry = telemetry
        self.tracer: trace.Tracer = telemetry.tracer("sn19.gateway")
        self.metrics = GatewayMetrics(telemetry.registry)
        self.authenticator = authenticator
        self.accounting = accounting
        self.hooks = hooks
        self.selector = selector
        self.dispatcher = dispatcher
        self.stats = stats
        self.counters = counters
        self.redis = redis
        # The /v1/billing/* handlers; None when billing is off.
        self.billing = billing
        # Billing itself and its database (None when billing is off): what a dashboard mounted
        # beside the API uses (``sn19.compose``).
        self.billing_system = billing_system
        self.db = db
        # Every miner attempt's outcome, per contender (``gateway.pipeline.attempts_done``);
        # flushed to Redis in the background. None: not counted (tests without Redis).
        self.contenders: CounterBuffer | None = None
        self._background: set[asyncio.Task[Any]] = set()

    def counter(self, task_id: str) -> TokenCounter:
        return self.counters[task_id]

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background (kept referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
