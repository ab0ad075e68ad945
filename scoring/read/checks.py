"""The checker's side of scoring's read API: the check queue's depth, and per task the check
score histograms and checks per hour of the last 24 hours (``ScoreboardReader.checker_stats``).

The hourly counts are kept per process and read incrementally (see ``_hour_rows``), so a
dashboard refreshing the page does not re-aggregate a day of check results each time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime

from redis.exceptions import RedisError
from sqlalchemy import func, select

from core.checks import CheckQueue
from core.db import Database
from core.db.tables.scoring import CheckResult
from scoring.read import queries as q
from scoring.read.views import CheckerStats, QueueStats, TaskChecks

BUCKETS = q.BUCKETS
# The newest check results (by id) are re-read on every call: ids are taken when a result is
# inserted, and a transaction may commit after one that took a later id.
LIVE_IDS = 10_000


class CheckStats:
    def __init__(self, db: Database, queue: CheckQueue | None) -> None:
        self.db = db
        self._queue = queue
        self._counts: dict[tuple[str, int, int], int] = {}  # (task, hour, bucket) -> checks
        self._counted_to = 0  # check result ids counted in _counts

    async def stats(self, tasks: list[str]) -> CheckerStats:
        """The queue now, and per ``tasks`` the check scores and jobs per hour of the last
        24 h."""
        first = int(time.time() // 3600) - 23
        counts: dict[str, list[int]] = defaultdict(lambda: [0] * BUCKETS)
        hourly: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
        for task, hour, bucket, count in await self._hour_rows(first, tasks):
            if 0 <= hour - first < 24:
                counts[task][min(max(bucket, 0), BUCKETS - 1)] += count
                hourly[task][hour - first] += count
        return CheckerStats(
            queue=await self.queue_stats(),
            window_start=datetime.fromtimestamp(first * 3600, UTC),
            hours=tuple(datetime.fromtimestamp((first + i) * 3600, UTC) for i in range(24)),
            tasks=tuple(
                TaskChecks(
                    task=task,
                    total=sum(counts[task]),
                    failed=sum(counts[task][: int(q.FAILED_BELOW * BUCKETS)]),
                    histogram=tuple(counts[task]),
                    per_hour=tuple(hourly[task]),
                )
                for task in tasks
            ),
        )

    async def _hour_rows(self, first: int, tasks: list[str]) -> list[tuple[str, int, int, int]]:
        """(task, epoch hour, bucket, checks) from hour ``first`` on (enabled tasks).

        Counted once per process: check results up to ``_counted_to`` (their id) are summed
        into ``_counts``; a call reads only the newer ones. The newest ``LIVE_IDS`` ids are
        always read again, because a transaction that took an id may commit after later ones.
        A result counts in the hour of its ``created_at`` (the request's start), however late
        the checker stores it."""
        since = datetime.fromtimestamp(first * 3600, UTC)
        dialect = self.db.dialect
        async with self.db.read() as session:
            newest = await session.scalar(select(func.max(CheckResult.id))) or 0
            settle_to = max(self._counted_to, newest - LIVE_IDS)
            if settle_to > self._counted_to:
                for task, hour, bucket, count in await q.check_histograms(
                    session, tasks, since, dialect, after_id=self._counted_to, up_to=settle_to
                ):
                    key = (task, hour, bucket)
                    self._counts[key] = self._counts.get(key, 0) + count
                self._counted_to = settle_to
            live = await q.check_histograms(session, tasks, since, dialect, after_id=settle_to)
        for key in [key for key in self._counts if key[1] < first]:
            del self._counts[key]
        return [(*key, count) for key, count in self._counts.items()] + live

    async def queue_stats(self) -> QueueStats:
        if self._queue is None:
            return QueueStats(stream="", available=False, error="no Redis in this process")
        try:
            depth = await self._queue.depth()
        except (RedisError, OSError) as exc:
            return QueueStats(stream=self._queue.stream, available=False, error=str(exc))
        return QueueStats(
            stream=self._queue.stream,
            available=True,
            length=depth.length,
            pending=depth.pending,
            lag=depth.lag,
            dead_letters=depth.dead,
        )
