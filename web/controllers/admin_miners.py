"""Operator pages, part 4: every miner (status, capacity, quality, speed, period scores, weight,
failures, routing) and one miner in depth (per task cards with charts, failed checks, the full
weight explanation). Staff read; nothing here changes anything. The numbers come from scoring's
read API (``dash.scoreboard``)."""

from __future__ import annotations

import re
from typing import Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from scoring import MINER_STATUSES
from web.auth import staff_only
from web.controllers.common import Req
from web.render import PUBLIC_NAV, page
from web.scoreboard import TableQuery, histogram_chart, score_chart, status_counts, table
from web.sessions import SignedIn
from web.state import Dashboard

_HOTKEY = re.compile(r"^[A-Za-z0-9]{1,64}$")


@get("/admin/miners", guards=[staff_only])
async def miners(request: Req, dash: Dashboard, me: SignedIn) -> Template:
    return await miners_page(request, dash, public=False)


async def miners_page(request: Req, dash: Dashboard, *, public: bool) -> Template:
    """The miners table; ``public``: the read-only scoreboard (``web.controllers.scoreboard``)."""
    tasks = dash.scoreboard.tasks()
    query = TableQuery.parse(request.query_params, tasks)
    everyone = await dash.scoreboard.miners()
    rows = table(everyone, query)
    runs = await dash.scoreboard.weight_runs(limit=1)
    max_capacity = next((t.max_capacity for t in dash.catalog.enabled() if t.id == query.task), 0)
    return page(
        request,
        dash,
        "admin/miners.html",
        active="scoreboard" if public else "miners",
        title="Miner scoreboard" if public else "Miners",
        query=query,
        tasks=tasks,
        task_labels={task.id: task.kind for task in dash.catalog.enabled()},
        statuses=MINER_STATUSES,
        counts=status_counts(everyone, query.task),
        total=len(everyone),
        rows=rows,
        run=runs[0] if runs else None,
        max_capacity=max_capacity,
        routes_known=all(s.routed is not None for m in everyone for s in m.tasks),
        live_stats=dash.scoreboard.live is not None,
        **_public(public),
    )


def _public(public: bool) -> dict[str, Any]:
    if not public:
        return {"public": False, "miners_path": "/admin/miners"}
    return {
        "public": True,
        "miners_path": "/scoreboard",
        "nav": PUBLIC_NAV,
        "brand": "scoreboard",
    }


@get("/admin/miners/{hotkey:str}", guards=[staff_only])
async def miner_detail(request: Req, dash: Dashboard, me: SignedIn, hotkey: str) -> Template:
    return await miner_page(request, dash, hotkey, public=False)


async def miner_page(request: Req, dash: Dashboard, hotkey: str, *, public: bool) -> Template:
    if not _HOTKEY.match(hotkey):
        raise NotFoundException("No such miner.")
    detail = await dash.scoreboard.miner(hotkey)
    if detail is None:
        raise NotFoundException(
            "No such miner: it is not in the synced metagraph, any period or weight run."
        )
    states = {state.task: state for state in detail.miner.tasks}
    cards = [
        {
            "task": task,
            "state": states.get(task.task),
            "status": detail.miner.status(task.task),
            "score_chart": score_chart(task.task, task.history) if task.history else None,
            "histogram": histogram_chart(f"{task.task}: check scores, last 24 h", task.histogram),
        }
        for task in detail.tasks
    ]
    label = f"uid {detail.miner.uid}" if detail.miner.uid is not None else "deregistered"
    return page(
        request,
        dash,
        "admin/miner.html",
        active="scoreboard" if public else "miners",
        title=f"Miner {label}",
        label=label,
        detail=detail,
        miner=detail.miner,
        cards=cards,
        explanation=detail.explanation,
        window_h=detail.quality_window_s / 3600,
        checks_24h=sum(sum(task.histogram) for task in detail.tasks),
        live_stats=dash.scoreboard.live is not None,
        advice=detail.advice,
        **_public(public),
    )
