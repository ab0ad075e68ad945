"""The scoring process's Prometheus metrics, served on a small HTTP port
(``scoring.metrics_port``; 0: not served).

Every scoring process (leader and standbys) serves its own registry; Prometheus scrapes them
all. ``sn19_scoring_leader`` is 1 on the process that holds the lock, so ``sum()`` over the
processes is 1 while someone leads. The routes and weights gauges are set by the leader only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.leader = Gauge(
            "sn19_scoring_leader",
            "1 while this process holds the scoring leader lock, else 0.",
            registry=r,
        )
        self.routes = Gauge(
            "sn19_scoring_routes",
            "Miners in the routing table last published for each task (0: the task has no route).",
            ["task"],
            registry=r,
        )
        self.routes_published = Gauge(
            "sn19_scoring_routes_published_timestamp_seconds",
            "Unix time the routing table was last published.",
            registry=r,
        )
        self.weights_set = Gauge(
            "sn19_scoring_weights_set_timestamp_seconds",
            "Unix time weights were last accepted by the chain (0: not since this process began).",
            registry=r,
        )
        self.weights_runs = Gauge(
            "sn19_scoring_weights_run_timestamp_seconds",
            "Unix time of the last weights run, by its final status (set, refused, skipped, "
            "unavailable).",
            ["status"],
            registry=r,
        )

    def follow_leadership(self, is_leader: Callable[[], bool]) -> None:
        """Read the leader gauge from ``is_leader`` at every scrape."""
        self.leader.set_function(lambda: 1.0 if is_leader() else 0.0)

    def published(self, tasks: Iterable[str], counts: Mapping[str, int], now: float) -> None:
        """Routes were published: ``counts`` per task; tasks of ``tasks`` absent from it got
        none."""
        for task in tasks:
            self.routes.labels(task).set(counts.get(task, 0))
        self.routes_published.set(now)

    def weights_run(self, status: str, now: float) -> None:
        self.weights_runs.labels(status).set(now)
        if status == "set":
            self.weights_set.set(now)


def serve_metrics(metrics: ScoringMetrics, host: str, port: int) -> Any:
    """Start the exporter thread; returns the server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    started = start_http_server(port, addr=host, registry=metrics.registry)
    return started[0] if isinstance(started, tuple) else started
