"""The miners table (filtering, sorting with missing values last, links that keep the view)
and the meter bars (pure)."""

from __future__ import annotations

from scoring import MinerView, PeriodCounts, TaskState
from web.charts import meter
from web.scoreboard import TableQuery, row_for, status_counts, table

TASKS = ["chat", "image"]


def view(uid: int | None, weight: float | None, **kw) -> MinerView:
    return MinerView(hotkey=f"5Key{uid}", uid=uid, axon="h:1", weight=weight, **kw)


MINERS = [
    view(1, 0.5, tasks=(TaskState("chat", capacity=10, concurrency=2, routed=True, quality=0.9),)),
    view(
        2,
        None,
        coldkey="5ColdZ",
        tasks=(TaskState("image", capacity=0, concurrency=0, routed=False),),
    ),
    view(
        3,
        0.2,
        tasks=(
            TaskState(
                "chat",
                capacity=5,
                concurrency=1,
                routed=True,
                cooled=True,
                quality=0.4,
                current=PeriodCounts(9, requests=7, failed=2, rate_limited=1),
            ),
            TaskState("image", capacity=3, concurrency=1, routed=True, quality=0.6),
        ),
    ),  # fmt: skip
    view(None, 0.3, tasks=(TaskState("chat", quality=0.8),)),
]


def test_parse_refuses_unknown_values() -> None:
    query = TableQuery.parse(
        {"task": "nope", "status": "evil", "sort": "drop", "q": " 5Key "}, TASKS
    )
    assert (query.task, query.status, query.sort, query.search) == ("", "", "uid", "5Key")
    assert not query.descending
    assert TableQuery.parse({"sort": "weight"}, TASKS).descending  # largest first by default
    assert not TableQuery.parse({"sort": "weight", "order": "asc"}, TASKS).descending


def test_sorting_puts_missing_values_last_either_way() -> None:
    by_weight = table(MINERS, TableQuery(sort="weight", descending=True))
    assert [r.miner.uid for r in by_weight] == [1, None, 3, 2]
    ascending = table(MINERS, TableQuery(sort="weight"))
    assert [r.miner.uid for r in ascending] == [3, None, 1, 2]
    assert [r.miner.uid for r in table(MINERS, TableQuery())] == [1, 2, 3, None]


def test_filters_and_per_task_rows() -> None:
    chat = table(MINERS, TableQuery(task="chat"))
    assert [r.miner.uid for r in chat] == [1, 3, None]
    three = next(r for r in chat if r.miner.uid == 3)
    assert three.status == "cooled" and three.state is not None and three.quality == 0.4
    assert (three.requests, three.failed, three.rate_limited) == (7, 2, 1)
    assert row_for(MINERS[2], "").quality == 0.5 and row_for(MINERS[2], "").status == "routed"
    assert [r.miner.uid for r in table(MINERS, TableQuery(status="no contender"))] == [2]
    assert [r.miner.uid for r in table(MINERS, TableQuery(search="coldz"))] == [2]
    assert [r.miner.uid for r in table(MINERS, TableQuery(search="3"))] == [3]
    assert status_counts(MINERS, "") == {"routed": 2, "no contender": 1, "deregistered": 1}
    assert status_counts(MINERS, "chat") == {"routed": 1, "cooled": 1, "deregistered": 1}


def test_links_keep_the_view() -> None:
    query = TableQuery(task="chat", search="a b", sort="quality", descending=True)
    assert query.link(status="routed") == "?task=chat&status=routed&q=a+b&sort=quality&order=desc"
    assert query.sort_link("quality").endswith("sort=quality&order=asc")
    assert query.sort_link("uid").endswith("sort=uid&order=asc")
    assert query.aria_sort("quality") == "descending" and query.aria_sort("uid") == "none"


def test_meter_is_svg_without_inline_styles() -> None:
    bar = str(meter(0.25, 1.0, "quality <0.25>"))
    assert 'width="25.0"' in bar and "style" not in bar and "&lt;0.25&gt;" in bar
    assert 'width="100.0"' in str(meter(7, 1.0)) and 'width="0.0"' in str(meter(None))
