"""Computing weights and setting them on chain, on the chain's cadence (SPEC §6).

Every ``scoring.weights_check_s`` the leader asks the chain whether it may set weights again:
blocks since this validator's last weights ≥ the subnet's ``weights_rate_limit`` (on the local
chain: ``chain.local_weights_rate_limit``). When it may, it gathers the inputs from the database
(open period's capacities, each task's recent check results, closed periods), computes
(``scoring.weights.formula``), stores the run with every input and output
(``scoring.weights.runs``), and sends the u16 vector with ``Chain.set_weights`` (the SDK handles
commit-reveal). The run's status records what the chain said.

The chain being unreachable is never fatal: the failure is logged, recorded on the run when one
was computed, and retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from core.chain import Chain, ChainUnavailable
from core.db import Database, utcnow
from core.settings import Settings
from protocol.catalog import Catalog
from scoring import store
from scoring.backoff import Backoff, sleep_or_stop
from scoring.metrics import ScoringMetrics
from scoring.sync import known_metagraph
from scoring.weights.formula import TaskInputs, WeightCalculation, calculate
from scoring.weights.runs import finish_run, parameters, store_run

log = logging.getLogger(__name__)


class WeightSetter:
    def __init__(
        self,
        *,
        db: Database,
        chain: Chain,
        catalog: Catalog,
        settings: Settings,
        backoff: Backoff,
        metrics: ScoringMetrics | None = None,
    ) -> None:
        self.db = db
        self.chain = chain
        self.catalog = catalog
        self.settings = settings
        self.backoff = backoff
        self.metrics = metrics or ScoringMetrics()
        self._attempted: int | None = None

    async def gather(self) -> tuple[list[TaskInputs], dict[str, int], int | None]:
        """The inputs of a calculation, read from the database."""
        scoring = self.settings.scoring
        period = await store.open_period(self.db)
        metagraph = await known_metagraph(self.db, self.chain.netuid)
        uids = {n.hotkey: n.uid for n in metagraph.neurons} if metagraph is not None else {}
        since = utcnow() - timedelta(seconds=scoring.quality_window_s)
        weights = self.catalog.normalized_weights()
        tasks: list[TaskInputs] = []
        for task in self.catalog.enabled():
            capacity = {
                c.hotkey: c.capacity
                for c in (period.contenders if period else ())
                if c.task == task.id
            }
            checks = await store.recent_checks(self.db, task.id, since)
            hotkeys = sorted(set(capacity) | set(checks))
            history = await store.period_history(
                self.db, task.id, hotkeys, limit=scoring.history_periods
            )
            tasks.append(TaskInputs(task.id, weights.get(task.id, 0.0), capacity, checks, history))
        return tasks, uids, period.id if period is not None else None

    async def compute(self, *, block: int | None = None) -> tuple[int, WeightCalculation]:
        """Calculate from the database and store the run (status ``computed``)."""
        tasks, uids, period_id = await self.gather()
        calc = calculate(tasks, uids)
        params = parameters(
            quality_window_s=self.settings.scoring.quality_window_s,
            history_periods=self.settings.scoring.history_periods,
        )
        run_id = await store_run(
            self.db,
            calc,
            task_weights={t.task: t.weight for t in tasks},
            params=params,
            period_id=period_id,
            block=block,
        )
        return run_id, calc

    async def due(self) -> tuple[bool, int]:
        """Whether the chain accepts weights from us now, and the current block. A run that set
        nothing (skipped or refused) also waits one rate-limit interval before the next."""
        block = await self.chain.current_block()
        last = await self.chain.last_weights_block()
        if self._attempted is not None:
            last = max(last or 0, self._attempted)
        if last is None:
            return True, block
        limit = await self.chain.weights_rate_limit()
        return block - last >= limit, block

    async def send(self, run_id: int, calc: WeightCalculation) -> str:
        """Set the run's weights on chain; returns the run's final status."""
        if calc.all_zero:
            await finish_run(self.db, run_id, status="skipped", message="every weight is zero")
            self.metrics.weights_run("skipped", time.time())
            log.info("weights run %d: nothing to set (every weight is zero)", run_id)
            return "skipped"
        configured = self.settings.scoring.weights_version_key
        try:
            version = configured if configured is not None else await self.chain.weights_version()
            uids = sorted(calc.u16)
            result = await self.chain.set_weights(
                uids=uids, weights=[calc.u16[uid] for uid in uids], version_key=version
            )
        except ChainUnavailable as exc:
            await finish_run(self.db, run_id, status="unavailable", message=str(exc))
            self.metrics.weights_run("unavailable", time.time())
            raise
        status = "set" if result.success else "refused"
        await finish_run(
            self.db,
            run_id,
            status=status,
            message=result.message,
            version_key=version,
            block=result.block,
        )
        self.metrics.weights_run(status, time.time())
        level = logging.INFO if result.success else logging.WARNING
        log.log(
            level, "weights run %d %s at block %s: %s", run_id, status, result.block, result.message
        )
        return status

    async def step(self) -> str | None:
        """One check of the cadence: compute and send when due (the run's status), else None.
        Raises ``ChainUnavailable``."""
        due, block = await self.due()
        if not due:
            return None
        run_id, calc = await self.compute(block=block)
        status = await self.send(run_id, calc)
        self._attempted = block
        return status

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: check the cadence every ``weights_check_s``, backing off while the
        chain is unreachable."""
        self.backoff.reset()
        while not stop.is_set():
            wait = self.settings.scoring.weights_check_s
            try:
                await self.step()
                self.backoff.reset()
            except ChainUnavailable as exc:
                wait = self.backoff.next_delay()
                log.warning(
                    "weights: chain unreachable (attempt %d): %s; retrying in %.1fs",
                    self.backoff.attempt,
                    exc,
                    wait,
                )
            if await sleep_or_stop(stop, wait):
                return
