"""The checker's Prometheus metrics, served on a small HTTP port (``checker.metrics_port``).

Each worker process serves its own ``/metrics`` (prometheus_client's exporter thread) from its
own registry; Prometheus scrapes every worker and sums. Jobs per second is
``rate(sn19_checker_jobs_total[1m])``; the queue gauges are read from Redis every few seconds by
each worker (any one of them is enough).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.checks import QueueDepth

QUALITY_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
AGE_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)


class CheckerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Counter(
            "sn19_checker_jobs",
            "Check jobs stored, by task, kind and outcome (ok, or the rule that scored it 0).",
            ["task", "kind", "outcome"],
            registry=r,
        )
        self.quality = Histogram(
            "sn19_checker_quality",
            "Quality score of stored checks.",
            ["task"],
            buckets=QUALITY_BUCKETS,
            registry=r,
        )
        self.check_seconds = Histogram(
            "sn19_checker_check_seconds",
            "Time to check one job (reference work included).",
            ["task"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.job_age = Histogram(
            "sn19_checker_job_age_seconds",
            "Time from enqueue to the stored result.",
            ["task"],
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.unchecked = Counter(
            "sn19_checker_unchecked",
            "Jobs acknowledged without a result (no reference engine, unknown task, duplicate).",
            ["task", "why"],
            registry=r,
        )
        self.dead_letters = Counter(
            "sn19_checker_dead_letters", "Jobs moved to the dead-letter stream.", registry=r
        )
        self.redeliveries = Counter(
            "sn19_checker_redeliveries", "Jobs taken over from another (dead) worker.", registry=r
        )
        self.errors = Counter(
            "sn19_checker_errors", "Checks that failed on our side (retried later).", registry=r
        )
        self.model_loads = Counter(
            "sn19_checker_model_loads", "Reference engines loaded.", ["task"], registry=r
        )
        self.queue_length = Gauge(
            "sn19_checker_queue_length", "Entries in the check stream.", registry=r
        )
        self.queue_pending = Gauge(
            "sn19_checker_queue_pending",
            "Jobs delivered to a worker, not yet acknowledged.",
            registry=r,
        )
        self.queue_lag = Gauge(
            "sn19_checker_queue_lag", "Jobs not yet delivered to any worker.", registry=r
        )
        self.queue_dead = Gauge(
            "sn19_checker_queue_dead", "Entries in the dead-letter stream.", registry=r
        )

    def stored(
        self, task: str, kind: str, code: str, quality: float, seconds: float, age: float
    ) -> None:
        self.jobs.labels(task, kind, code or "ok").inc()
        self.quality.labels(task).observe(quality)
        self.check_seconds.labels(task).observe(seconds)
        if age >= 0:
            self.job_age.labels(task).observe(age)

    def depth(self, depth: QueueDepth) -> None:
        self.queue_length.set(depth.length)
        self.queue_pending.set(depth.pending)
        if depth.lag is not None:
            self.queue_lag.set(depth.lag)
        self.queue_dead.set(depth.dead)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def serve_metrics(metrics: CheckerMetrics, host: str, port: int) -> Any:
    """Start the exporter thread; returns the server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    started = start_http_server(port, addr=host, registry=metrics.registry)
    return started[0] if isinstance(started, tuple) else started
