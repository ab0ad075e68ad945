"""Reporting queries over the daily aggregates, on both backends: one-pass and per-query
totals agree, days without traffic are zeros, account pages are keyset-paginated."""

from __future__ import annotations

from datetime import timedelta

from billing import Billing
from core.db.base import utcnow
from core.db.engine import Database
from tests.support.dashboard import seed_history
from web.reports import Reports, Totals, day_range


async def test_daily_and_by_model_agree(db: Database, billing: Billing) -> None:
    account = await billing.accounts.create("reports")
    key = await billing.keys.create(account.id, "k")
    history = await seed_history(db, account.id, key.key.id, days=40)
    reports = Reports(db)
    start, end = day_range(30, utcnow().date())
    daily = await reports.daily(start, end, account_id=account.id)
    models = await reports.by_model(start, end, account_id=account.id)
    both = await reports.daily_by_model(start, end, account_id=account.id)
    assert both == (daily, models)
    assert len(daily) == 30 and daily[0].day == start and daily[-1].day == end
    assert daily[-1].totals == Totals()  # today: nothing seeded
    assert sum(d.totals.cost for d in daily) == sum(c for d, c in history.items() if d >= start)
    assert [m.task for m in models] == ["sn19-tiny-chat"]
    top = await reports.top_accounts(start, end)
    assert any(a.account_id == account.id and a.totals == models[0].totals for a in top)


async def test_account_pages(db: Database, billing: Billing) -> None:
    marker = f"pager-{utcnow().timestamp():.0f}"
    ids = [(await billing.accounts.create(f"{marker}-{i}")).id for i in range(7)]
    reports = Reports(db)
    seen: list[int] = []
    after = None
    while True:
        rows, after = await reports.accounts(query=marker, after_id=after, limit=3)
        seen += [row.id for row in rows]
        if after is None:
            break
    assert seen == ids
    by_id, _ = await reports.accounts(query=str(ids[2]))
    assert ids[2] in [row.id for row in by_id]
    assert (await reports.accounts(query="no-such-account-anywhere"))[0] == []
    found = next(row for row in by_id if row.id == ids[2])
    assert utcnow() - timedelta(minutes=5) < found.created_at
