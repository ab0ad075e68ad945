"""OpenTelemetry traces and metrics for one process (or one app instance in tests).

``Telemetry`` owns a ``TracerProvider`` and a ``MeterProvider`` and never installs them as the
global providers, so several apps can live in one test process. Traces are exported over
OTLP/HTTP only when ``telemetry.otlp_endpoint`` is set (needs the
``opentelemetry-exporter-otlp-proto-http`` package); tests pass an in-memory exporter. With no
exporter, tracers are no-ops and cost almost nothing.

Metrics are read by the Prometheus reader into a per-instance ``CollectorRegistry`` (not
prometheus_client's global one, which would refuse a second app's collectors) and rendered by
``render_metrics`` for ``/metrics``. Instruments named ``*_seconds`` get latency buckets.
"""

from __future__ import annotations

import contextlib
import importlib
import logging

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from core.settings import TelemetrySettings

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def _otlp_processor(endpoint: str) -> SpanProcessor | None:
    try:
        module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError:
        log.warning(
            "telemetry.otlp_endpoint is set but opentelemetry-exporter-otlp-proto-http is not "
            "installed; traces are not exported"
        )
        return None
    exporter: SpanExporter = module.OTLPSpanExporter(endpoint=endpoint)
    return BatchSpanProcessor(exporter)


class Telemetry:
    def __init__(
        self,
        settings: TelemetrySettings,
        *,
        span_exporter: SpanExporter | None = None,
        service_name: str | None = None,
    ) -> None:
        resource = Resource.create({"service.name": service_name or settings.service_name})
        processors: list[SpanProcessor] = []
        if settings.otlp_endpoint:
            processor = _otlp_processor(settings.otlp_endpoint)
            if processor is not None:
                processors.append(processor)
        if span_exporter is not None:
            processors.append(SimpleSpanProcessor(span_exporter))
        self.tracing = bool(processors)
        self.tracer_provider = TracerProvider(
            sampler=ALWAYS_ON if processors else ALWAYS_OFF,
            resource=resource,
            shutdown_on_exit=False,
        )
        for processor in processors:
            self.tracer_provider.add_span_processor(processor)
        self.registry = CollectorRegistry(auto_describe=True)
        reader = PrometheusMetricReader(registry=self.registry, disable_target_info=True)
        self._reader = reader
        self.meter_provider = MeterProvider(
            metric_readers=[reader],
            resource=resource,
            views=[
                View(
                    instrument_name="*_seconds",
                    aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS),
                )
            ],
            exemplar_filter=AlwaysOffExemplarFilter(),
            shutdown_on_exit=False,
        )

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer; a no-op one when nothing exports spans (an SDK span that is sampled off
        still costs ~15 µs to create, a no-op span ~1 µs)."""
        if not self.tracing:
            return trace.NoOpTracer()
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def render_metrics(self) -> bytes:
        """The Prometheus text exposition of this instance's metrics."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        with contextlib.suppress(KeyError, AttributeError):
            self.registry.unregister(self._reader._collector)
