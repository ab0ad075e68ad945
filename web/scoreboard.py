"""The miners table: scoring's ``MinerView`` as rows for one task (or all), filtered by status
and a search, sorted by any column; and the charts of the miner, checker and chain pages.
Everything here is presentation: the numbers come from ``scoring.ScoreboardReader``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from markupsafe import Markup

from scoring import MINER_STATUSES, MinerView, ScorePoint, TaskState
from web.charts import CHECKS, SCORE, bar_chart, bucket_labels, line_chart


@dataclass(frozen=True)
class MinerRow:
    miner: MinerView
    status: str
    # The task's state when the table shows one task (None: all tasks, or not on that task).
    state: TaskState | None
    quality: float | None  # the task's, or the mean over the miner's tasks (latest run)
    score: float | None  # last closed period's score (the task's, or the mean)
    requests: int  # open period so far (live counters)
    rate_limited: int
    failed: int
    failed_checks: int  # last 24 h

    @property
    def weight_share(self) -> float | None:
        """The weight relative to the largest (what u16 encodes)."""
        u16 = self.miner.weight_u16
        return None if u16 is None else u16 / 65535


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def row_for(miner: MinerView, task: str) -> MinerRow:
    states = [s for s in miner.tasks if not task or s.task == task]
    current = [s.current for s in states if s.current is not None]
    return MinerRow(
        miner=miner,
        status=miner.status(task or None),
        state=states[0] if task and states else None,
        quality=_mean([s.quality for s in states]),
        score=_mean([s.last.score for s in states if s.last is not None]),
        requests=sum(c.requests for c in current),
        rate_limited=sum(c.rate_limited for c in current),
        failed=sum(c.failed for c in current),
        failed_checks=sum(s.failed_checks_24h for s in states),
    )


SortKey = Callable[[MinerRow], float | str | None]
SORTS: dict[str, SortKey] = {
    "uid": lambda r: r.miner.uid,
    "hotkey": lambda r: r.miner.hotkey,
    "stake": lambda r: r.miner.stake,
    "status": lambda r: MINER_STATUSES.index(r.status),
    "capacity": lambda r: r.state.capacity if r.state else None,
    "requests": lambda r: r.requests,
    "failed": lambda r: r.failed + r.rate_limited,
    "score": lambda r: r.score,
    "quality": lambda r: r.quality,
    "speed": lambda r: r.state.speed_metric if r.state else None,
    "checks": lambda r: r.failed_checks,
    "weight": lambda r: r.miner.weight,
}
# Columns whose natural first click is "largest first".
DESCENDING = frozenset({"stake", "capacity", "requests", "failed", "score", "quality", "speed"})
DESCENDING |= {"checks", "weight"}


@dataclass(frozen=True)
class TableQuery:
    task: str = ""
    status: str = ""
    search: str = ""
    sort: str = "uid"
    descending: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str], tasks: Sequence[str]) -> TableQuery:
        sort = params.get("sort", "")
        sort = sort if sort in SORTS else "uid"
        order = params.get("order", "")
        return cls(
            task=params.get("task", "") if params.get("task", "") in tasks else "",
            status=params.get("status", "") if params.get("status", "") in MINER_STATUSES else "",
            search=params.get("q", "").strip()[:100],
            sort=sort,
            descending=order == "desc" if order in ("asc", "desc") else sort in DESCENDING,
        )

    def link(self, **changes: str) -> str:
        """The query string of this view with ``changes`` (sort, order, task, status)."""
        values = {
            "task": self.task,
            "status": self.status,
            "q": self.search,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            **changes,
        }
        return "?" + urlencode({k: v for k, v in values.items() if v})

    def sort_link(self, key: str) -> str:
        if key == self.sort:
            return self.link(sort=key, order="asc" if self.descending else "desc")
        return self.link(sort=key, order="desc" if key in DESCENDING else "asc")

    def aria_sort(self, key: str) -> str:
        if key != self.sort:
            return "none"
        return "descending" if self.descending else "ascending"

    def matches(self, row: MinerRow) -> bool:
        if self.task and row.miner.task(self.task) is None:
            return False
        if self.status and row.status != self.status:
            return False
        needle = self.search.lower()
        if not needle:
            return True
        miner = row.miner
        return (
            needle in miner.hotkey.lower()
            or needle in miner.coldkey.lower()
            or (needle.isdigit() and miner.uid == int(needle))
        )


def table(miners: Sequence[MinerView], query: TableQuery) -> list[MinerRow]:
    """The rows to show: filtered, then sorted (missing values last in either order)."""
    rows = [r for r in (row_for(m, query.task) for m in miners) if query.matches(r)]
    key = SORTS[query.sort]
    known = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    known.sort(key=lambda r: (key(r), r.miner.hotkey), reverse=query.descending)
    return known + missing


def status_counts(miners: Sequence[MinerView], task: str) -> dict[str, int]:
    counts = dict.fromkeys(MINER_STATUSES, 0)
    for miner in miners:
        if not task or miner.task(task) is not None:
            counts[miner.status(task or None)] += 1
    return {status: count for status, count in counts.items() if count}


def score_chart(task: str, points: Sequence[ScorePoint]) -> Markup:
    return line_chart(
        f"{task}: period score, last {len(points)} closed periods",
        [(f"#{p.period_id}", p.score or 0.0) for p in points],
        SCORE,
    )


def histogram_chart(title: str, counts: Sequence[int]) -> Markup:
    return bar_chart(title, list(zip(bucket_labels(len(counts)), counts, strict=True)), CHECKS)


def hourly_chart(title: str, labels: Sequence[str], counts: Sequence[int]) -> Markup:
    return bar_chart(title, list(zip(labels, counts, strict=True)), CHECKS)
