"""PostgreSQL: the holds, or the settles and releases, of one account as ONE transaction.

What ``billing.batching.GroupCommit`` sends when requests of one account arrive together (a
batch of one goes through ``billing.fastpath``'s single statements instead). The rows written
are exactly those of the per-request path, in the same lock order (holds, then the account,
then the daily aggregates), so ``ledger.verify`` cannot tell the two apart:

- ``take_holds``: the account row is locked (``FOR UPDATE``); each request, in arrival order,
  is admitted if what is left of the balance covers it (a request that does not fit is refused
  and the next ones are still considered, as if each had come alone); one update of the
  balance, the holds and their ledger rows (ids drawn after the lock, ``balance_after`` the
  running sum);
- ``close_holds``: the holds still open are closed (a hold closed before, by a retry or the
  sweeper, or asked twice in the batch, is left alone: its caller replays it), the account gets
  the sum of their refunds, each gets its ledger rows (release, and settle when charged) in
  order, its usage record, and the daily aggregates grow by their sums.

A statement that fails rolls the whole transaction back: none of the batch happened.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing.costs import Usage
from billing.holds import Hold
from billing.keys.store import KeyContext
from protocol.catalog import Price, Task


@dataclass(frozen=True)
class HoldAsk:
    key: KeyContext
    task: Task
    amount: int
    price: Price
    request_id: str
    expires_at: datetime


@dataclass(frozen=True)
class CloseAsk:
    hold: Hold
    charged: int
    usage: Usage
    status: str
    closed_status: str
    miner_hotkey: str | None
    latency_ms: int | None
    actor: str
    reason: str


async def _ids(connection: Any, table: str, count: int) -> list[int]:
    rows = await connection.fetch(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, $1)",  # noqa: S608 - a table name of ours
        count,
    )
    return [int(row[0]) for row in rows]


_INSERT_HOLDS = """
WITH a AS (
    UPDATE accounts SET balance = $2, updated_at = $3 WHERE id = $1 RETURNING id
), h AS (
    INSERT INTO holds (id, account_id, key_id, request_id, task, kind, amount, status,
                       price_input, price_output, price_step, spend_day, spend_month,
                       created_at, expires_at)
    SELECT v.id, $1, v.key_id, v.request_id, v.task, v.kind, v.amount, 'open', v.price_input,
           v.price_output, v.price_step, NULL, NULL, $3, v.expires_at
    FROM a, unnest($4::bigint[], $5::bigint[], $6::varchar[], $7::varchar[], $8::varchar[],
                   $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
                   $13::timestamptz[])
         AS v(id, key_id, request_id, task, kind, amount, price_input, price_output,
              price_step, expires_at)
)
INSERT INTO ledger_entries (id, account_id, kind, amount, balance_after, hold_id, key_id, actor,
                            reason, reference, created_at)
SELECT v.id, $1, 'hold', v.amount, v.balance_after, v.hold_id, v.key_id, v.actor, v.reason,
       v.reference, $3
FROM unnest($14::bigint[], $15::bigint[], $16::bigint[], $4::bigint[], $5::bigint[],
            $17::varchar[], $18::varchar[], $19::varchar[])
     AS v(id, amount, balance_after, hold_id, key_id, actor, reason, reference)
"""


async def take_holds(
    connection: Any, account_id: int, asks: list[HoldAsk], *, now: datetime
) -> tuple[list[Hold | None], tuple[str, int] | None]:
    """Each ask's hold, or None when it did not fit; and the account's (status, balance) as
    the refusals found it (None: no such account)."""
    async with connection.transaction():
        row = await connection.fetchrow(
            "SELECT status, balance FROM accounts WHERE id = $1 FOR UPDATE", account_id
        )
        if row is None:
            return [None] * len(asks), None
        state = (str(row[0]), int(row[1]))
        if state[0] != "active":
            return [None] * len(asks), state
        balance = state[1]
        admitted: list[tuple[int, HoldAsk, int]] = []
        for position, ask in enumerate(asks):
            if ask.amount <= balance:
                balance -= ask.amount
                admitted.append((position, ask, balance))
        if not admitted:
            return [None] * len(asks), state
        hold_ids = await _ids(connection, "holds", len(admitted))
        ledger_ids = await _ids(connection, "ledger_entries", len(admitted))
        asked = [ask for _, ask, _ in admitted]
        await connection.execute(
            _INSERT_HOLDS,
            account_id,
            balance,
            now,
            hold_ids,
            [ask.key.key_id for ask in asked],
            [ask.request_id[:128] for ask in asked],
            [ask.task.id for ask in asked],
            [ask.task.kind for ask in asked],
            [ask.amount for ask in asked],
            [ask.price.input_per_million for ask in asked],
            [ask.price.output_per_million for ask in asked],
            [ask.price.per_step for ask in asked],
            [ask.expires_at for ask in asked],
            ledger_ids,
            [-ask.amount for ask in asked],
            [after for _, _, after in admitted],
            [ask.key.actor[:200] for ask in asked],
            [f"hold for {ask.task.id}"[:500] for ask in asked],
            [ask.request_id[:255] for ask in asked],
        )
    holds: list[Hold | None] = [None] * len(asks)
    for (position, ask, after), hold_id in zip(admitted, hold_ids, strict=True):
        holds[position] = Hold(
            id=hold_id,
            account_id=account_id,
            key_id=ask.key.key_id,
            request_id=ask.request_id,
            task=ask.task.id,
            kind=ask.task.kind,
            amount=ask.amount,
            price=ask.price,
            expires_at=ask.expires_at,
            balance=after,
        )
    return holds, state


_CLOSE_HOLDS = """
UPDATE holds SET status = v.status, cost = v.cost, closed_at = $2
FROM (SELECT * FROM unnest($1::bigint[], $3::varchar[], $4::bigint[]) AS v(id, status, cost)
      ORDER BY id) AS v
WHERE holds.id = v.id AND holds.status = 'open'
RETURNING holds.id
"""

_WRITE_CLOSES = """
WITH l AS (
    INSERT INTO ledger_entries (id, account_id, kind, amount, balance_after, hold_id, key_id,
                                actor, reason, reference, created_at)
    SELECT v.id, $1, v.kind, v.amount, v.balance_after, v.hold_id, v.key_id, v.actor, v.reason,
           v.reference, $2
    FROM unnest($3::bigint[], $4::varchar[], $5::bigint[], $6::bigint[], $7::bigint[],
                $8::bigint[], $9::varchar[], $10::varchar[], $11::varchar[])
         AS v(id, kind, amount, balance_after, hold_id, key_id, actor, reason, reference)
), u AS (
    INSERT INTO usage_records (hold_id, account_id, key_id, request_id, task, kind, input_tokens,
                               output_tokens, images, steps, cost, miner_hotkey, latency_ms,
                               status, created_at)
    SELECT v.hold_id, $1, v.key_id, v.request_id, v.task, v.kind, v.input_tokens,
           v.output_tokens, v.images, v.steps, v.cost, v.miner_hotkey, v.latency_ms, v.status, $2
    FROM unnest($12::bigint[], $13::bigint[], $14::varchar[], $15::varchar[], $16::varchar[],
                $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[],
                $22::varchar[], $23::integer[], $24::varchar[])
         AS v(hold_id, key_id, request_id, task, kind, input_tokens, output_tokens, images,
              steps, cost, miner_hotkey, latency_ms, status)
)
INSERT INTO usage_daily (day, account_id, key_id, task, requests, errors, input_tokens,
                         output_tokens, images, steps, cost)
SELECT $25::date, $1, v.key_id, v.task, v.requests, v.errors, v.input_tokens, v.output_tokens,
       v.images, v.steps, v.cost
FROM unnest($26::bigint[], $27::varchar[], $28::bigint[], $29::bigint[], $30::bigint[],
            $31::bigint[], $32::bigint[], $33::bigint[], $34::bigint[])
     AS v(key_id, task, requests, errors, input_tokens, output_tokens, images, steps, cost)
ORDER BY v.key_id, v.task
ON CONFLICT (day, account_id, key_id, task) DO UPDATE SET
    requests = usage_daily.requests + EXCLUDED.requests,
    errors = usage_daily.errors + EXCLUDED.errors,
    input_tokens = usage_daily.input_tokens + EXCLUDED.input_tokens,
    output_tokens = usage_daily.output_tokens + EXCLUDED.output_tokens,
    images = usage_daily.images + EXCLUDED.images,
    steps = usage_daily.steps + EXCLUDED.steps,
    cost = usage_daily.cost + EXCLUDED.cost
"""


def _ledger_rows(closing: list[CloseAsk]) -> list[tuple[str, int, CloseAsk, str]]:
    """(kind, amount, ask, reason) of each ledger row, in order."""
    rows: list[tuple[str, int, CloseAsk, str]] = []
    for ask in closing:
        rows.append(("release", ask.hold.amount, ask, ask.reason))
        if ask.closed_status == "settled":
            rows.append(("settle", -ask.charged, ask, f"{ask.hold.task}: {ask.status}"))
    return rows


async def close_holds(
    connection: Any, account_id: int, asks: list[CloseAsk], *, now: datetime
) -> list[int | None]:
    """Each ask's balance after the batch, or None when its hold was not open any more."""
    # The first ask of each hold closes it; a second ask of the same hold in the batch
    # (concurrent settles of one request) replays, as if it came after.
    firsts: dict[int, CloseAsk] = {}
    for ask in asks:
        firsts.setdefault(ask.hold.id, ask)
    async with connection.transaction():
        opened = await connection.fetch(
            _CLOSE_HOLDS,
            list(firsts),
            now,
            [ask.closed_status for ask in firsts.values()],
            [ask.charged for ask in firsts.values()],
        )
        open_ids = {int(row[0]) for row in opened}
        closing = [ask for hold_id, ask in firsts.items() if hold_id in open_ids]
        if not closing:
            return [None] * len(asks)
        refund = sum(ask.hold.amount - ask.charged for ask in closing)
        balance = int(
            await connection.fetchval(
                "UPDATE accounts SET balance = balance + $2, updated_at = $3 WHERE id = $1 "
                "RETURNING balance",
                account_id,
                refund,
                now,
            )
        )
        rows = _ledger_rows(closing)
        ids = await _ids(connection, "ledger_entries", len(rows))
        running = balance - sum(amount for _, amount, _, _ in rows)
        afters = []
        for _, amount, _, _ in rows:
            running += amount
            afters.append(running)
        daily: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * 7)
        for ask in closing:
            totals = daily[(ask.hold.key_id, ask.hold.task)]
            for index, value in enumerate(
                (
                    1,
                    0 if ask.status == "ok" else 1,
                    ask.usage.input_tokens,
                    ask.usage.output_tokens,
                    ask.usage.images,
                    ask.usage.steps,
                    ask.charged,
                )
            ):
                totals[index] += value
        await connection.execute(
            _WRITE_CLOSES,
            account_id,
            now,
            ids,
            [kind for kind, _, _, _ in rows],
            [amount for _, amount, _, _ in rows],
            afters,
            [ask.hold.id for _, _, ask, _ in rows],
            [ask.hold.key_id for _, _, ask, _ in rows],
            [ask.actor[:200] for _, _, ask, _ in rows],
            [reason[:500] for _, _, _, reason in rows],
            [ask.hold.request_id[:255] for _, _, ask, _ in rows],
            [ask.hold.id for ask in closing],
            [ask.hold.key_id for ask in closing],
            [ask.hold.request_id[:128] for ask in closing],
            [ask.hold.task for ask in closing],
            [ask.hold.kind for ask in closing],
            [ask.usage.input_tokens for ask in closing],
            [ask.usage.output_tokens for ask in closing],
            [ask.usage.images for ask in closing],
            [ask.usage.steps for ask in closing],
            [ask.charged for ask in closing],
            [ask.miner_hotkey[:64] if ask.miner_hotkey else None for ask in closing],
            [ask.latency_ms for ask in closing],
            [ask.status[:32] for ask in closing],
            now.date(),
            *([list(column) for column in zip(*daily.keys(), strict=True)] if daily else [[], []]),
            *[[totals[index] for totals in daily.values()] for index in range(7)],
        )
    closed = {id(ask) for ask in closing}
    return [balance if id(ask) in closed else None for ask in asks]
