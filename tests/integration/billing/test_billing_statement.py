"""The statement (``AccountService.statement``): one line per request, whatever the ledger wrote
for it (hold, release, settle); grants, top-ups, refunds and adjustments each their own line;
filters by kind, key, model and date; keyset pages."""

from __future__ import annotations

from datetime import timedelta

from billing import Billing, StatementFilter, Usage, estimate_chat, ledger
from core.db.base import utcnow
from core.db.engine import Database
from protocol.catalog import Task


async def test_one_line_per_request_and_distinct_money_lines(
    billing: Billing, db: Database, chat_task: Task
) -> None:
    account = await billing.accounts.create("statement co")
    await billing.accounts.grant(account.id, 50_000_000, actor="operator:ann", reason="launch")
    async with db.transaction() as session:
        await ledger.post(
            session,
            account.id,
            ledger.Entry("topup", 10_000_000, "stripe", "checkout", reference="evt_1"),
        )
    prod = (await billing.keys.create(account.id, "production")).key
    ci = (await billing.keys.create(account.id, "ci")).key
    charged = []
    for key, n in ((prod, 3), (ci, 2)):
        ctx = await billing.authenticator.authenticate((await billing.keys.rotate(key.id)).secret)
        for i in range(n):
            hold = await billing.service.hold(
                ctx, chat_task, estimate_chat(10, 32, 1), request_id=f"req-{key.name}-{i}"
            )
            settled = await billing.service.settle(
                hold,
                Usage(input_tokens=10, output_tokens=5 + i),
                miner_hotkey="5Miner",
                latency_ms=9,
                status="ok",
            )
            charged.append(settled.cost)
    released = await billing.service.hold(
        ctx, chat_task, estimate_chat(10, 32, 1), request_id="req-released"
    )
    await billing.service.release(released, reason="no_capacity", status="no_capacity")
    pending = await billing.service.hold(
        ctx, chat_task, estimate_chat(10, 32, 1), request_id="req-in-flight"
    )
    await billing.accounts.grant(
        account.id, -1_000, actor="operator:ann", reason="fix", kind="adjustment"
    )

    lines = await billing.accounts.statement(account.id)
    # Newest first: adjustment, the request in flight, the released one, 5 settled, top-up, grant.
    assert [line.kind for line in lines] == (["adjustment"] + ["request"] * 7 + ["topup", "grant"])
    requests = [line for line in lines if line.kind == "request"]
    assert requests[0].request_id == "req-in-flight" and requests[0].status == "pending"
    assert requests[0].amount == -pending.amount
    assert requests[1].request_id == "req-released" and requests[1].amount == 0
    settled_lines = requests[2:]
    assert sorted(-line.amount for line in settled_lines) == sorted(charged)
    assert {line.key_name for line in settled_lines} == {"production", "ci"}
    assert all(line.task == chat_task.id and line.status == "ok" for line in settled_lines)
    # The balance after the newest line is the account's balance now.
    balance = await billing.accounts.balance(account.id)
    assert lines[0].balance_after == balance.available
    # The balance after a settled request is what its last ledger row left.
    assert settled_lines[-1].balance_after == 60_000_000 - charged[0]

    # Filters: a key or a model leaves requests only; kinds; dates.
    only_ci = await billing.accounts.statement(account.id, StatementFilter(key_id=ci.id))
    assert {line.key_name for line in only_ci} == {"ci"} and len(only_ci) == 4
    model = await billing.accounts.statement(account.id, StatementFilter(task=chat_task.id))
    assert len(model) == 7 and all(line.kind == "request" for line in model)
    money = await billing.accounts.statement(
        account.id, StatementFilter(kinds=("grant", "topup", "refund", "adjustment"))
    )
    assert [line.kind for line in money] == ["adjustment", "topup", "grant"]
    assert money[1].actor == "stripe" and money[1].reference == "evt_1"
    today = utcnow().date()
    assert len(await billing.accounts.statement(account.id, StatementFilter(start=today))) == 10
    assert (
        await billing.accounts.statement(account.id, StatementFilter(end=today - timedelta(days=1)))
        == []
    )
    assert await billing.accounts.statement_models(account.id) == [chat_task.id]

    # Keyset pages.
    first = await billing.accounts.statement(account.id, limit=4)
    second = await billing.accounts.statement(account.id, limit=4, before_id=first[-1].id)
    rest = await billing.accounts.statement(account.id, limit=4, before_id=second[-1].id)
    assert [x.id for x in first + second + rest] == [x.id for x in lines]
