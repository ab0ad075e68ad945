"""Operator pages, part 5: the checker (queue depth, checks per hour, score distributions per
task) and the chain (block, metagraph sync, weight setting, weight runs and periods). Staff
read; the numbers come from scoring's read API (``dash.scoreboard``)."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from web.auth import staff_only
from web.controllers.common import Req
from web.render import page
from web.scoreboard import histogram_chart, hourly_chart
from web.sessions import SignedIn
from web.state import Dashboard

# The chain's target block time: turns "blocks to wait" into minutes.
BLOCK_TIME_S = 12


@get("/admin/checker", guards=[staff_only])
async def checker(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    stats = await dash.scoreboard.checker_stats()
    labels = [hour.strftime("%H:00") for hour in stats.hours]
    overall = [sum(values) for values in zip(*(t.per_hour for t in stats.tasks), strict=True)]
    return page(
        request,
        dash,
        "admin/checker.html",
        active="checker",
        title="Checker",
        stats=stats,
        queue=stats.queue,
        failed=sum(t.failed for t in stats.tasks),
        hourly=hourly_chart(
            "Checks per hour, last 24 h (UTC)", labels, overall or [0] * len(labels)
        ),
        cards=[
            {
                "task": task,
                "histogram": histogram_chart(
                    f"{task.task}: check scores, last 24 h", task.histogram
                ),
                "hourly": hourly_chart(f"{task.task}: checks per hour", labels, task.per_hour),
            }
            for task in stats.tasks
        ],
    )


@get("/admin/chain", guards=[staff_only])
async def chain(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    status = await dash.scoreboard.chain_status()
    wait = status.blocks_to_wait
    return page(
        request,
        dash,
        "admin/chain.html",
        active="chain",
        title="Chain",
        chain=status,
        wait_minutes=None if wait is None else wait * BLOCK_TIME_S / 60,
        runs=await dash.scoreboard.weight_runs(limit=20),
        periods=await dash.scoreboard.periods(limit=20),
    )
