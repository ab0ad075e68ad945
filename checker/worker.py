"""The check-queue worker: consume, group by model, check, store, acknowledge.

Each loop iteration takes one batch (``batch_size``): first entries that a dead worker left
pending longer than ``claim_idle_s`` (XAUTOCLAIM), then new ones (XREADGROUP). The batch is
grouped by task and each group runs on that task's reference engine, loaded once (so models are
not swapped per job). A job is acknowledged only after its result is committed; a redelivered
job that was already stored is acknowledged without a second row (``checker.store``). While a
job is in flight a heartbeat keeps its entry fresh, so live workers never lose jobs to others.

- A job delivered more than ``max_deliveries`` times (it keeps killing workers, or the check
  keeps failing on our side) is dead-lettered and scored 0 with the reason.
- A job that does not decode at all (no miner to blame) is dead-lettered without a result.
- Bad jobs (missing fields, oversized or malformed responses, invalid images, token ids out of
  the vocabulary) are scored 0 by the checks themselves; nothing a miner sends raises here.
- An unexpected error (a bug, the database down) leaves the job pending: it is retried after
  ``claim_idle_s`` and dead-lettered after ``max_deliveries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from checker.dispatch import run_check
from checker.metrics import CheckerMetrics
from checker.outcome import DEAD_LETTER, CheckOutcome, failed
from checker.references import ReferencePool, ReferenceUnavailable
from checker.store import ResultRecord, store_result
from core.checks import CheckQueue, Delivery, JobDecodeError, JobEnvelope, decode_envelope
from core.db import Database
from core.settings import CheckerSettings
from protocol.catalog import Catalog, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Item:
    delivery: Delivery
    envelope: JobEnvelope


class CheckWorker:
    def __init__(
        self,
        *,
        queue: CheckQueue,
        db: Database,
        catalog: Catalog,
        pool: ReferencePool,
        settings: CheckerSettings,
        consumer: str,
        metrics: CheckerMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.db = db
        self.catalog = catalog
        self.pool = pool
        self.settings = settings
        self.consumer = consumer
        self.metrics = metrics or CheckerMetrics()
        self._inflight: set[str] = set()
        self.processed = 0

    # -- loops ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set: ``concurrency`` batch loops, the heartbeat, the queue
        gauges."""
        await self.queue.ensure_group()
        helpers = [
            asyncio.create_task(self._heartbeat(stop)),
            asyncio.create_task(self._gauges(stop)),
        ]
        loops = [
            asyncio.create_task(self._loop(stop)) for _ in range(max(1, self.settings.concurrency))
        ]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in helpers:
                task.cancel()
            for task in [*loops, *helpers]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.step(block_ms=self.settings.block_ms)
            except Exception:  # Redis or database unavailable: back off, keep the worker alive
                log.exception("check batch failed; retrying")
                self.metrics.errors.inc()
                worked = 0
                await _wait(stop, 1.0)
            if not worked:
                await asyncio.sleep(0)

    async def step(self, *, block_ms: int = 0) -> int:
        """Take and process one batch; returns how many entries were handled."""
        size = max(1, self.settings.batch_size)
        deliveries = await self.queue.reclaim(
            self.consumer, min_idle_ms=int(self.settings.claim_idle_s * 1000), count=size
        )
        if deliveries:
            self.metrics.redeliveries.inc(len(deliveries))
        if len(deliveries) < size:
            deliveries += await self.queue.read(
                self.consumer, count=size - len(deliveries), block_ms=0 if deliveries else block_ms
            )
        deliveries = [d for d in deliveries if d.entry_id not in self._inflight]
        if deliveries:
            await self.process(deliveries)
        return len(deliveries)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        interval = max(0.05, self.settings.claim_idle_s / 3)
        while not stop.is_set():
            await _wait(stop, interval)
            with contextlib.suppress(Exception):
                await self.queue.touch(self.consumer, sorted(self._inflight))

    async def _gauges(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                self.metrics.depth(await self.queue.depth())
            await _wait(stop, 5.0)

    # -- one batch ------------------------------------------------------------------------------

    async def process(self, deliveries: list[Delivery]) -> None:
        self._inflight.update(d.entry_id for d in deliveries)
        try:
            groups: dict[str, list[_Item]] = defaultdict(list)
            for delivery in deliveries:
                item = await self._prepare(delivery)
                if item is not None:
                    groups[item.envelope.task].append(item)
            for task_id in sorted(groups):
                await self._run_group(task_id, groups[task_id])
        finally:
            self._inflight.difference_update(d.entry_id for d in deliveries)

    async def _prepare(self, delivery: Delivery) -> _Item | None:
        """Decode the envelope; dead-letter what cannot be (or must no longer be) checked."""
        if delivery.data is None:
            await self.queue.ack(delivery.entry_id)  # trimmed from the stream while pending
            self.metrics.unchecked.labels("-", "trimmed").inc()
            return None
        try:
            envelope = decode_envelope(delivery.data)
        except JobDecodeError as exc:
            log.warning("check job %s does not decode: %s", delivery.entry_id, exc)
            await self.queue.dead_letter(delivery, f"undecodable job: {exc}"[:1000])
            self.metrics.dead_letters.inc()
            return None
        if delivery.deliveries > self.settings.max_deliveries:
            reason = (
                f"the job was delivered {delivery.deliveries} times without a stored result "
                "(it crashes or fails every checker)"
            )
            await self._store(_Item(delivery, envelope), failed(DEAD_LETTER, reason), 0.0)
            await self.queue.dead_letter(delivery, reason)
            self.metrics.dead_letters.inc()
            return None
        return _Item(delivery, envelope)

    async def _run_group(self, task_id: str, items: list[_Item]) -> None:
        task = self.catalog.get(task_id)
        if task is None or not task.check.enabled:
            await self.queue.ack(*(item.delivery.entry_id for item in items))
            self.metrics.unchecked.labels(task_id, "unknown task").inc(len(items))
            return
        loads = self.pool.loads
        try:
            async with self.pool.use(task) as engine:
                if self.pool.loads > loads:
                    self.metrics.model_loads.labels(task_id).inc()
                for item in items:
                    await self._check_one(item, task, engine)
        except ReferenceUnavailable as exc:
            log.warning("no reference for %s (%d jobs not scored): %s", task_id, len(items), exc)
            await self.queue.ack(*(item.delivery.entry_id for item in items))
            self.metrics.unchecked.labels(task_id, "no reference").inc(len(items))

    async def _check_one(self, item: _Item, task: Task, engine: Any) -> None:
        started = time.perf_counter()
        try:
            outcome = await run_check(item.envelope, task, engine)
        except Exception:  # a bug on our side: leave it pending, retried then dead-lettered
            log.exception("checking job %s failed", item.envelope.job_id)
            self.metrics.errors.inc()
            return
        await self._store(item, outcome, time.perf_counter() - started)

    async def _store(self, item: _Item, outcome: CheckOutcome, seconds: float) -> None:
        envelope = item.envelope
        task = self.catalog.get(envelope.task)
        alpha = task.check.sequential_alpha if task is not None else 0.0
        record = ResultRecord(
            job_id=envelope.job_id,
            task=envelope.task,
            kind=envelope.kind,
            miner_hotkey=envelope.miner.hotkey,
            miner_uid=envelope.miner.uid,
            organic=envelope.organic,
            response_time_s=envelope.timings.total_s,
            started=envelope.timings.started,
            request_id=envelope.request_id,
            receipt=envelope.receipt,
            deliveries=item.delivery.deliveries,
            check_seconds=seconds,
            checked_by=self.consumer,
        )
        stored = await store_result(self.db, record, outcome, sequential_alpha=alpha)
        await self.queue.ack(item.delivery.entry_id)
        self.processed += 1
        if not stored.stored:
            self.metrics.unchecked.labels(envelope.task, "duplicate").inc()
            return
        age = time.time() - envelope.created_at if envelope.created_at > 0 else -1.0
        self.metrics.stored(envelope.task, envelope.kind, stored.code, stored.quality, seconds, age)
        if stored.code:
            log.info(
                "job %s (%s, miner %s): quality %.3f, %s",
                envelope.job_id,
                envelope.task,
                envelope.miner.hotkey,
                stored.quality,
                stored.code,
            )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
