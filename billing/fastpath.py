"""PostgreSQL: the per-request hold and settle/release as ONE statement each.

The generic path (``billing.service``) runs a transaction of three statements for a hold and of
five for a settle through the ORM session: on the gateway's hot path that cost several
milliseconds of CPU and ~5 round trips per operation. On PostgreSQL the same rows are written by
one statement with data-modifying CTEs, sent straight to the asyncpg driver in autocommit mode
(a single statement is its own transaction: all of it happens or none of it; SQLAlchemy's
per-statement machinery is skipped), with the same rules:

- the account row is updated (and locked) first; the ledger rows are inserted from its
  ``RETURNING`` balance, so their ids are drawn after the lock and ``balance_after`` stays a
  running sum; a settle locks the hold first (hold → account → daily aggregate, the lock order
  of every money transaction);
- a hold that does not fit updates nothing and inserts nothing (no row comes back);
- a settle of a hold that is no longer open changes nothing (no row comes back: the caller
  replays the first result).

Used only for holds without spend caps (their counters stay on the generic path).

Connections (``Connections``): the database engine's pool (``EngineConnections``: its liveness
check costs BEGIN, ping, ROLLBACK), or a dedicated asyncpg pool (``DriverPool``, what the gateway
uses through ``Billing.create(fast_path=True)``): acquiring one costs no round trip.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.costs import Usage
from billing.holds import Hold
from billing.keys.store import KeyContext
from core.settings import DatabaseSettings
from protocol.catalog import Price, Task


class Connections(Protocol):
    def connection(self) -> AbstractAsyncContextManager[Any]:
        """An asyncpg connection, in autocommit mode (no transaction open)."""


class EngineConnections:
    """The driver connections of a SQLAlchemy engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            yield raw.driver_connection


class DriverPool:
    """A dedicated asyncpg pool, opened on first use; ``close`` it.

    ``durable=False``: its commits do not wait for the WAL to reach the disk
    (``synchronous_commit = off``). They are as atomic and as visible as any other; a crash of
    the PostgreSQL server can lose the last fraction of a second of them, and nothing else.
    The gateway uses that for settles and releases only (see ``Billing.create``)."""

    def __init__(self, url: str, settings: DatabaseSettings, *, durable: bool = True) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
        # The hold pool and the settle pool of ``Billing.create`` share ``pool_size``.
        self._size = max(1, (settings.pool_size + (1 if durable else 0)) // 2)
        self._timeout = settings.pool_timeout_s
        self._server_settings = {} if durable else {"synchronous_commit": "off"}
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _open(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]

        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._size,
                    timeout=self._timeout,
                    # The statements change no session state: skip the reset round trip
                    # (RESET ALL, UNLISTEN, ...) on every release.
                    reset=_keep_session,
                    server_settings=self._server_settings,
                )
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        pool = self._pool if self._pool is not None else await self._open()
        async with pool.acquire(timeout=self._timeout) as connection:
            yield connection

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _keep_session(connection: Any) -> None:
    del connection


class _Statement:
    """SQL written with ``:name`` parameters, sent with asyncpg's ``$n``."""

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.sql = re.sub(r"(?<![:\w]):([a-z_]+)", number, sql)

    async def fetchrow(self, connection: Any, params: Mapping[str, Any]) -> Any:
        return await connection.fetchrow(self.sql, *(params[name] for name in self.names))


_HOLD = _Statement(
    """
WITH a AS (
    UPDATE accounts
    SET balance = balance - CAST(:amount AS BIGINT), updated_at = CAST(:now AS TIMESTAMPTZ)
    WHERE id = CAST(:account_id AS BIGINT) AND status = 'active'
      AND balance >= CAST(:amount AS BIGINT)
    RETURNING balance
), h AS (
    INSERT INTO holds (account_id, key_id, request_id, task, kind, amount, status, price_input,
                       price_output, price_step, spend_day, spend_month, created_at, expires_at)
    SELECT CAST(:account_id AS BIGINT), CAST(:key_id AS BIGINT), CAST(:request_id AS VARCHAR),
           CAST(:task AS VARCHAR), CAST(:kind AS VARCHAR), CAST(:amount AS BIGINT), 'open',
           CAST(:price_input AS BIGINT), CAST(:price_output AS BIGINT),
           CAST(:price_step AS BIGINT), NULL, NULL, CAST(:now AS TIMESTAMPTZ),
           CAST(:expires_at AS TIMESTAMPTZ)
    FROM a
    RETURNING id
), l AS (
    INSERT INTO ledger_entries (account_id, kind, amount, balance_after, hold_id, key_id, actor,
                                reason, reference, created_at)
    SELECT CAST(:account_id AS BIGINT), 'hold', -CAST(:amount AS BIGINT), a.balance, h.id,
           CAST(:key_id AS BIGINT), CAST(:actor AS VARCHAR), CAST(:reason AS VARCHAR),
           CAST(:reference AS VARCHAR), CAST(:now AS TIMESTAMPTZ)
    FROM a, h
)
SELECT a.balance, h.id FROM a, h
"""
)

# The ledger rows of a closed hold: "release +amount" then, when settled, "settle -cost";
# ``offset`` is what follows the row, so balance_after = final balance - offset.
_CLOSE = """
WITH h AS (
    UPDATE holds
    SET status = CAST(:closed AS VARCHAR), cost = CAST(:cost AS BIGINT),
        closed_at = CAST(:now AS TIMESTAMPTZ)
    WHERE id = CAST(:hold_id AS BIGINT) AND status = 'open'
    RETURNING account_id
), a AS (
    UPDATE accounts
    SET balance = accounts.balance + CAST(:refund AS BIGINT),
        updated_at = CAST(:now AS TIMESTAMPTZ)
    FROM h
    WHERE accounts.id = h.account_id
    RETURNING accounts.id, accounts.balance
), l AS (
    INSERT INTO ledger_entries (account_id, kind, amount, balance_after, hold_id, key_id, actor,
                                reason, reference, created_at)
    SELECT a.id, v.kind, v.amount, a.balance - v.after, CAST(:hold_id AS BIGINT),
           CAST(:key_id AS BIGINT), CAST(:actor AS VARCHAR), v.reason,
           CAST(:reference AS VARCHAR), CAST(:now AS TIMESTAMPTZ)
    FROM a CROSS JOIN ({rows}) AS v(position, kind, amount, after, reason)
    ORDER BY v.position
), u AS (
    INSERT INTO usage_records (hold_id, account_id, key_id, request_id, task, kind, input_tokens,
                               output_tokens, images, steps, cost, miner_hotkey, latency_ms,
                               status, created_at)
    SELECT CAST(:hold_id AS BIGINT), a.id, CAST(:key_id AS BIGINT),
           CAST(:request_id AS VARCHAR), CAST(:task AS VARCHAR), CAST(:kind AS VARCHAR),
           CAST(:input_tokens AS BIGINT), CAST(:output_tokens AS BIGINT),
           CAST(:images AS BIGINT), CAST(:steps AS BIGINT), CAST(:cost AS BIGINT),
           CAST(:miner_hotkey AS VARCHAR), CAST(:latency_ms AS INTEGER),
           CAST(:status AS VARCHAR), CAST(:now AS TIMESTAMPTZ)
    FROM a
), d AS (
    INSERT INTO usage_daily (day, account_id, key_id, task, requests, errors, input_tokens,
                             output_tokens, images, steps, cost)
    SELECT CAST(:day AS DATE), a.id, CAST(:key_id AS BIGINT), CAST(:task AS VARCHAR), 1,
           CAST(:errors AS BIGINT), CAST(:input_tokens AS BIGINT),
           CAST(:output_tokens AS BIGINT), CAST(:images AS BIGINT), CAST(:steps AS BIGINT),
           CAST(:cost AS BIGINT)
    FROM a
    ON CONFLICT (day, account_id, key_id, task) DO UPDATE SET
        requests = usage_daily.requests + EXCLUDED.requests,
        errors = usage_daily.errors + EXCLUDED.errors,
        input_tokens = usage_daily.input_tokens + EXCLUDED.input_tokens,
        output_tokens = usage_daily.output_tokens + EXCLUDED.output_tokens,
        images = usage_daily.images + EXCLUDED.images,
        steps = usage_daily.steps + EXCLUDED.steps,
        cost = usage_daily.cost + EXCLUDED.cost
)
SELECT a.balance FROM a
"""
_RELEASE_ROW = (
    "SELECT 1, 'release', CAST(:amount AS BIGINT), CAST(0 AS BIGINT), CAST(:reason AS VARCHAR)"
)
_SETTLE_ROWS = (
    "SELECT 1, 'release', CAST(:amount AS BIGINT), -CAST(:cost AS BIGINT), "
    "CAST(:reason AS VARCHAR) "
    "UNION ALL SELECT 2, 'settle', -CAST(:cost AS BIGINT), CAST(0 AS BIGINT), "
    "CAST(:settle_reason AS VARCHAR)"
)
_SETTLED = _Statement(_CLOSE.replace("{rows}", _SETTLE_ROWS))
_RELEASED = _Statement(_CLOSE.replace("{rows}", _RELEASE_ROW))


async def account_state(connection: Any, account_id: int) -> tuple[str, int] | None:
    """The account's (status, balance), or None when there is no such account."""
    row = await connection.fetchrow(
        "SELECT status, balance FROM accounts WHERE id = $1", account_id
    )
    return (str(row[0]), int(row[1])) if row is not None else None


async def take_hold(
    connection: Any,
    key: KeyContext,
    task: Task,
    amount: int,
    price: Price,
    request_id: str,
    *,
    now: datetime,
    expires_at: datetime,
) -> Hold | None:
    """The hold, or None when the account cannot cover ``amount`` (nothing was written)."""
    row = await _HOLD.fetchrow(
        connection,
        {
            "account_id": key.account_id,
            "key_id": key.key_id,
            "request_id": request_id[:128],
            "task": task.id,
            "kind": task.kind,
            "amount": amount,
            "price_input": price.input_per_million,
            "price_output": price.output_per_million,
            "price_step": price.per_step,
            "now": now,
            "expires_at": expires_at,
            "actor": key.actor[:200],
            "reason": f"hold for {task.id}"[:500],
            "reference": request_id[:255],
        },
    )
    if row is None:
        return None
    return Hold(
        id=int(row[1]),
        account_id=key.account_id,
        key_id=key.key_id,
        request_id=request_id,
        task=task.id,
        kind=task.kind,
        amount=amount,
        price=price,
        expires_at=expires_at,
        balance=int(row[0]),
    )


async def close_hold(
    connection: Any,
    hold: Hold,
    charged: int,
    usage: Usage,
    *,
    status: str,
    closed_status: str,
    miner_hotkey: str | None,
    latency_ms: int | None,
    actor: str,
    reason: str,
    now: datetime,
) -> int | None:
    """Close an open hold (without spend periods) as ``closed_status``: ``settled`` charges
    ``charged``, ``released`` and ``expired`` charge nothing; one usage record and the daily
    aggregate either way. The balance after, or None when the hold was not open any more."""
    settled = closed_status == "settled"
    params: dict[str, object] = {
        "closed": closed_status,
        "hold_id": hold.id,
        "key_id": hold.key_id,
        "request_id": hold.request_id[:128],
        "reference": hold.request_id[:255],
        "task": hold.task,
        "kind": hold.kind,
        "amount": hold.amount,
        "cost": charged,
        "refund": hold.amount - charged,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "images": usage.images,
        "steps": usage.steps,
        "miner_hotkey": miner_hotkey[:64] if miner_hotkey else None,
        "latency_ms": latency_ms,
        "status": status[:32],
        "errors": 0 if status == "ok" else 1,
        "actor": actor[:200],
        "reason": reason[:500],
        "now": now,
        "day": now.date(),
    }
    if settled:
        params["settle_reason"] = f"{hold.task}: {status}"[:500]
    statement = _SETTLED if settled else _RELEASED
    row = await statement.fetchrow(connection, params)
    return int(row[0]) if row is not None else None
