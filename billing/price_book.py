"""Effective prices: the ``prices`` table overrides the catalog's defaults per task.

The gateway reads prices on every request, so ``PriceBook`` keeps the overrides in memory and
re-reads the table at most every ``ttl_s`` seconds (``billing.price_cache_ttl_s``): a change
made with ``sn19 prices set`` reaches every replica within that time. A hold records the prices
it was computed with, and its settle charges at those same prices.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select

from billing.errors import BillingNotFound
from core.db.base import utcnow
from core.db.dialect import insert_ignore
from core.db.engine import Database
from core.db.tables.billing import Price as PriceRow
from protocol.catalog import Catalog, Price, Task


@dataclass(frozen=True)
class PriceListing:
    task: str
    kind: str
    enabled: bool
    default: Price
    override: Price | None

    @property
    def effective(self) -> Price:
        return self.override or self.default


class PriceBook:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._ttl = ttl_s
        self._clock = clock
        self._overrides: dict[str, Price] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def price(self, task: Task) -> Price:
        """The price of ``task`` now (override, else the catalog's)."""
        if self._loaded_at is None or self._clock() - self._loaded_at > self._ttl:
            await self.refresh()
        return self._overrides.get(task.id, task.price)

    async def refresh(self) -> None:
        async with self._lock:
            if self._loaded_at is not None and self._clock() - self._loaded_at <= self._ttl:
                return
            async with self._db.read() as session:
                rows = (await session.execute(select(PriceRow))).scalars().all()
            self._overrides = {
                row.task: Price(
                    input_per_million=row.input_per_million,
                    output_per_million=row.output_per_million,
                    per_step=row.per_step,
                )
                for row in rows
            }
            self._loaded_at = self._clock()

    def invalidate(self) -> None:
        self._loaded_at = None

    def _task(self, task_id: str) -> Task:
        for task in self._catalog.tasks:
            if task.id == task_id:
                return task
        raise BillingNotFound(f"no task {task_id!r} in the catalog {self._catalog.name!r}")

    async def set(self, task_id: str, price: Price, *, actor: str) -> None:
        """Override the price of a catalog task (takes effect within the cache TTL)."""
        self._task(task_id)
        values = {
            "task": task_id,
            "input_per_million": price.input_per_million,
            "output_per_million": price.output_per_million,
            "per_step": price.per_step,
            "updated_by": actor,
            "updated_at": utcnow(),
        }
        async with self._db.transaction() as session:
            row = await session.get(PriceRow, task_id, with_for_update=True)
            if row is None:
                await session.execute(insert_ignore(self._db.dialect, PriceRow, values, ["task"]))
            else:
                for name, value in values.items():
                    setattr(row, name, value)
        self.invalidate()

    async def reset(self, task_id: str) -> bool:
        """Drop the override (back to the catalog price); False if there was none."""
        async with self._db.transaction() as session:
            result = await session.execute(delete(PriceRow).where(PriceRow.task == task_id))
            removed = bool(getattr(result, "rowcount", 0))
        self.invalidate()
        return removed

    async def listing(self) -> list[PriceListing]:
        self.invalidate()
        await self.refresh()
        return [
            PriceListing(
                task=task.id,
                kind=task.kind,
                enabled=task.enabled,
                default=task.price,
                override=self._overrides.get(task.id),
            )
            for task in self._catalog.tasks
        ]
