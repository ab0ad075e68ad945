"""A short fair queue for miner slots: when every miner that could serve a task is busy, a
request waits for a free slot instead of getting an instant 503.

A request finds no candidate when every routed miner of its task is at the concurrency it
announced (in flight counted across every replica: the live stats are shared) or cooled down.
It then waits here, at most ``gateway.queue_wait_s`` (0: the task's time to first token) and
within its own deadline; at most ``gateway.queue_size`` requests of a task wait in one replica,
at most ``gateway.queue_per_key`` of them from one API key. Beyond any of these: 503
``no_capacity`` with ``Retry-After``. A task no miner serves at all is a 503 at once.

Fairness: waiters line up per API key and keys take turns (round-robin; each key's requests
first come, first served), so a key sending a burst waits behind its own requests, not in front
of everyone else's. While anyone waits for a task, new requests for it queue too instead of
taking a slot that frees.

Wake-ups: while requests wait, a pump counts the task's free slots (``Selector.free_slots``)
whenever a request of this replica ends (``released``) and every ``POLL_S`` (slots freed on
other replicas arrive with the shared stats), and wakes that many waiters in turn order. A
woken waiter looks for candidates again; if another request took the slot first, it goes back
to the head of its key's line.

While requests wait for a task, the replica raises the task's ``core.miners.OrganicWaiting``
flag, and the synthetic sender holds its traffic for that task: organic requests come first.

Nothing here runs while miners have free slots: the request path checks one dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.errors import NoCapacity
from core.miners.waiting import OrganicWaiting
from core.telemetry import LATENCY_BUCKETS
from scoring import MinerRoute

POLL_S = 0.05
FLAG_REFRESH_S = 1.0

Find = Callable[[], Awaitable[list[MinerRoute]]]
FreeSlots = Callable[[], Awaitable[int]]


class _Line:
    """The waiters of one task: per key, in arrival order; keys in turn order."""

    def __init__(self) -> None:
        self.keys: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self.count = 0
        self.wake = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None

    def add(self, key: str, waiter: asyncio.Future[None], *, front: bool = False) -> None:
        line = self.keys.get(key)
        if line is None:
            line = self.keys[key] = deque()
        if front:
            line.appendleft(waiter)
        else:
            line.append(waiter)
        self.count += 1

    def remove(self, key: str, waiter: asyncio.Future[None]) -> None:
        line = self.keys.get(key)
        if line is None or waiter not in line:
            return
        line.remove(waiter)
        self.count -= 1
        if not line:
            del self.keys[key]

    def waiting(self, key: str) -> int:
        line = self.keys.get(key)
        return len(line) if line is not None else 0

    def next(self) -> asyncio.Future[None] | None:
        """The next waiter in turn: the head of the first key's line; that key goes last."""
        while self.keys:
            key, line = next(iter(self.keys.items()))
            waiter = line.popleft()
            self.count -= 1
            if line:
                self.keys.move_to_end(key)
            else:
                del self.keys[key]
            if not waiter.done():
                return waiter
        return None


class SlotQueue:
    def __init__(
        self,
        *,
        size: int,
        per_key: int,
        retry_after_s: int,
        registry: CollectorRegistry | None = None,
        flag: OrganicWaiting | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.size = size
        self.per_key = per_key
        self.retry_after_s = retry_after_s
        self.flag = flag
        self.poll_s = poll_s
        self._lines: dict[str, _Line] = {}
        self._depth = Gauge(
            "sn19_gateway_queue_waiting",
            "Requests waiting for a free miner slot, by model (this replica).",
            ["model"],
            registry=registry,
        )
        self._waits = Histogram(
            "sn19_gateway_queue_wait_seconds",
            "How long requests that got a slot waited for it.",
            ["model"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._refused = Counter(
            "sn19_gateway_queue_refused",
            "Requests that found no slot: the queue was full (full, per_key) or the wait ran out "
            "(timeout).",
            ["model", "reason"],
            registry=registry,
        )

    def busy(self, task: str) -> bool:
        """Requests are waiting for ``task`` (new ones queue behind them)."""
        line = self._lines.get(task)
        return line is not None and line.count > 0

    def released(self, task: str) -> None:
        """A request of ``task`` ended: a slot may be free."""
        line = self._lines.get(task)
        if line is not None:
            line.wake.set()

    def _refuse(self, task: str, reason: str, message: str) -> NoCapacity:
        self._refused.labels(task, reason).inc()
        return NoCapacity(message, headers={"Retry-After": str(self.retry_after_s)})

    async def wait(
        self, task: str, key: str, until: float, find: Find, free_slots: FreeSlots
    ) -> list[MinerRoute]:
        """Wait in ``key``'s line until ``find`` gives candidates, at most until the monotonic
        ``until``; raises ``NoCapacity`` when the queue is full or the wait runs out."""
        line = self._lines.get(task)
        if line is None:
            line = self._lines[task] = _Line()
        if line.count >= self.size:
            raise self._refuse(task, "full", f"Every miner serving {task} is busy; retry shortly.")
        if line.waiting(key) >= self.per_key:
            raise self._refuse(
                task,
                "per_key",
                f"This API key already has {self.per_key} requests waiting for {task}; retry "
                "shortly.",
            )
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        front = False
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            line.add(key, waiter, front=front)
            self._depth.labels(task).set(line.count)
            if line.pump is None or line.pump.done():
                line.pump = loop.create_task(self._pump(task, line, free_slots))
            try:
                async with asyncio.timeout_at(loop.time() + until - time.monotonic()):
                    await waiter
            except TimeoutError:
                raise self._refuse(
                    task, "timeout", f"Every miner serving {task} stayed busy; retry shortly."
                ) from None
            finally:
                line.remove(key, waiter)
                self._depth.labels(task).set(line.count)
            found = await find()
            if found:
                self._waits.labels(task).observe(time.monotonic() - started)
                return found
            front = True  # another request took the slot: back to the head of the line

    async def _pump(self, task: str, line: _Line, free_slots: FreeSlots) -> None:
        flagged = 0.0
        try:
            while line.count > 0:
                if self.flag is not None and time.monotonic() - flagged >= FLAG_REFRESH_S:
                    flagged = time.monotonic()
                    await self.flag.raise_flag(task)
                for _ in range(await free_slots()):
                    waiter = line.next()
                    if waiter is None:
                        break
                    waiter.set_result(None)
                line.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(line.wake.wait(), self.poll_s)
        finally:
            if self.flag is not None and flagged:
                await self.flag.lower_flag(task)

    async def close(self) -> None:
        pumps: list[Any] = [line.pump for line in self._lines.values() if line.pump is not None]
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
