"""The PostgreSQL fast path of the money operations, grouped per account.

``Lanes`` runs the holds of each account through one group commit and its settles and releases
through another (``billing.batching``): a request alone is one statement
(``billing.fastpath``), requests of one account arriving together are one transaction
(``billing.fastbatch``). ``BillingService`` uses it for every hold and close without spend
caps when a fast path exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from billing import fastbatch, fastpath
from billing.batching import GroupCommit
from billing.fastbatch import CloseAsk, HoldAsk
from billing.holds import Hold

Account = tuple[str, int] | None
Taken = tuple[Hold | None, Account]


class Lanes:
    def __init__(
        self,
        holds: fastpath.Connections,
        closes: fastpath.Connections,
        *,
        clock: Callable[[], datetime],
        release: Callable[..., Coroutine[Any, Any, Any]],
    ) -> None:
        self._hold_connections = holds
        self._close_connections = closes
        self._clock = clock
        self._release = release
        self._holds: GroupCommit[int, HoldAsk, Taken] = GroupCommit(
            self._take, abandoned=self._abandoned
        )
        self._closes: GroupCommit[int, CloseAsk, int | None] = GroupCommit(self._close)
        self._background: set[asyncio.Task[Any]] = set()

    async def hold(self, ask: HoldAsk) -> Taken:
        """The hold, or None and the account's (status, balance) as the batch found it."""
        return await self._holds.submit(ask.key.account_id, ask)

    async def close(self, ask: CloseAsk) -> int | None:
        """The balance after, or None when the hold was not open any more."""
        return await self._closes.submit(ask.hold.account_id, ask)

    async def _take(self, account_id: int, asks: list[HoldAsk]) -> list[Taken]:
        now = self._clock()
        async with self._hold_connections.connection() as connection:
            if len(asks) > 1:
                holds, account = await fastbatch.take_holds(connection, account_id, asks, now=now)
                return [(hold, account) for hold in holds]
            ask = asks[0]
            hold = await fastpath.take_hold(
                connection,
                ask.key,
                ask.task,
                ask.amount,
                ask.price,
                ask.request_id,
                now=now,
                expires_at=ask.expires_at,
            )
            # Why not, read on the same connection (a burst of refusals must not need a
            # second pool's connections).
            account = None if hold else await fastpath.account_state(connection, account_id)
            return [(hold, account)]

    async def _close(self, account_id: int, asks: list[CloseAsk]) -> list[int | None]:
        now = self._clock()
        async with self._close_connections.connection() as connection:
            if len(asks) > 1:
                return await fastbatch.close_holds(connection, account_id, asks, now=now)
            ask = asks[0]
            balance = await fastpath.close_hold(
                connection,
                ask.hold,
                ask.charged,
                ask.usage,
                status=ask.status,
                closed_status=ask.closed_status,
                miner_hotkey=ask.miner_hotkey,
                latency_ms=ask.latency_ms,
                actor=ask.actor,
                reason=ask.reason,
                now=now,
            )
            return [balance]

    def _abandoned(self, ask: HoldAsk, taken: Taken) -> None:
        """The request that asked for this hold went away while its batch ran: release it now
        rather than leave it to the sweeper."""
        hold = taken[0]
        if hold is not None:
            self._spawn(
                self._release(hold, reason="client_disconnected", status="client_disconnected")
            )

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the batches and releases in flight (at shutdown)."""
        await self._holds.drain()
        await self._closes.drain()
        if self._background:
            await asyncio.wait(set(self._background))
