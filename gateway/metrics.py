"""The gateway's metrics, exported at ``/metrics`` in Prometheus format.

Recorded with ``prometheus_client`` instruments registered in the app's own ``CollectorRegistry``
(``Telemetry.registry``, which also carries whatever other components record through
OpenTelemetry's Prometheus reader), because they are on the request path: an OpenTelemetry SDK
``Counter.add`` / ``Histogram.record`` cost ~25 µs each here (attribute validation and hashing),
a ``prometheus_client`` child with cached labels ~2.5 µs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

from billing import Usage
from core.miners import Attempt
from core.telemetry import LATENCY_BUCKETS


class _Family:
    """One metric with a cache of its label children (``labels()`` is the slow part)."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *labels: str) -> Any:
        found = self._children.get(labels)
        if found is None:
            found = self._children[labels] = self._metric.labels(*labels)
        return found


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: list[str]) -> _Family:
            return _Family(Counter(name, doc, labels, registry=registry))

        def histogram(name: str, doc: str, labels: list[str]) -> _Family:
            return _Family(Histogram(name, doc, labels, registry=registry, buckets=LATENCY_BUCKETS))

        self.requests = counter(
            "sn19_gateway_requests",
            "Requests by route, model and HTTP status.",
            ["route", "model", "status"],
        )
        self.latency = histogram(
            "sn19_gateway_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ["route", "model"],
        )
        self.ttft = histogram(
            "sn19_gateway_time_to_first_token_seconds",
            "Time from request to the first token from the miner.",
            ["model"],
        )
        self.overhead = histogram(
            "sn19_gateway_overhead_seconds",
            "Time in the gateway's own code: the request's wall time minus its waits on miners "
            "and on the client.",
            ["route"],
        )
        self.prompt_tokens = counter(
            "sn19_gateway_prompt_tokens", "Prompt (input) tokens by model.", ["model"]
        )
        self.completion_tokens = counter(
            "sn19_gateway_completion_tokens", "Delivered completion tokens by model.", ["model"]
        )
        self.images = counter("sn19_gateway_images", "Images delivered by model.", ["model"])
        self.attempts = counter(
            "sn19_gateway_miner_attempts",
            "Miner attempts by model and outcome.",
            ["model", "outcome"],
        )
        self.failovers = counter(
            "sn19_gateway_failovers",
            "Requests that needed more than one miner attempt.",
            ["model"],
        )
        self.stream_errors = counter(
            "sn19_gateway_stream_errors",
            "Streams ended with an in-band error after the first byte.",
            ["model", "outcome"],
        )

    def request(self, route: str, model: str, status: int, duration_s: float) -> None:
        self.requests.child(route, model, str(status)).inc()
        self.latency.child(route, model).observe(duration_s)

    def served(
        self,
        route: str,
        model: str,
        *,
        elapsed: float,
        overhead: float,
        ttft: float | None,
        usage: Usage,
        broken: str | None,
    ) -> None:
        """A request that reached a miner and answered 200 (a stream broken after its first
        byte included: ``broken`` is its outcome)."""
        self.request(route, model, 200, elapsed)
        self.overhead.child(route).observe(overhead)
        if broken is not None:
            self.stream_errors.child(model, broken).inc()
        if ttft is not None:
            self.ttft.child(model).observe(ttft)
        self.add(self.prompt_tokens, usage.input_tokens, model)
        self.add(self.completion_tokens, usage.output_tokens, model)
        self.add(self.images, usage.images, model)

    def attempts_made(self, model: str, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            outcome = attempt.outcome.value if attempt.outcome is not None else "unknown"
            self.attempts.child(model, outcome).inc()
        if len(attempts) > 1:
            self.failovers.child(model).inc()

    @staticmethod
    def add(family: _Family, amount: float, *labels: str) -> None:
        if amount:
            family.child(*labels).inc(amount)


class BillingCollector:
    """Billing's counters for this replica's ``/metrics``, read at each scrape: ``expired`` is
    ``BillingService.holds_expired`` (the sweeper counts there; billing starts before this app's
    registry exists)."""

    def __init__(self, expired: Callable[[], int]) -> None:
        self._expired = expired

    def collect(self) -> Iterator[Metric]:
        expired = CounterMetricFamily(
            "sn19_billing_holds_expired",
            "Holds this replica's sweeper released after their expiry: their request neither "
            "settled nor released them (a crashed gateway, or settles failing).",
        )
        expired.add_metric([], self._expired())
        yield expired
