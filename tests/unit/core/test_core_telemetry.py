"""Telemetry per app instance (several in one process), and structured logs with request ids."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.logging import configure_logging, request_id_var
from core.settings import TelemetrySettings
from core.telemetry import Telemetry


def test_several_instances_in_one_process() -> None:
    first, second = Telemetry(TelemetrySettings()), Telemetry(TelemetrySettings())
    first.meter("t").create_counter("things").add(3)
    assert b"things_total{" in first.render_metrics()
    assert b"} 3.0" in first.render_metrics()
    assert b"things_total" not in second.render_metrics()
    first.shutdown()
    second.shutdown()


def test_spans_go_to_the_given_exporter_only_when_tracing() -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(TelemetrySettings(), span_exporter=exporter)
    assert telemetry.tracing
    telemetry.tracer("t").start_span("work").end()
    assert [span.name for span in exporter.get_finished_spans()] == ["work"]
    quiet = Telemetry(TelemetrySettings())
    assert not quiet.tracing
    assert not quiet.tracer("t").start_span("x").is_recording()


def test_json_logs_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging(TelemetrySettings(log_format="json", log_level="DEBUG"), stream=stream)
    try:
        token = request_id_var.set("req_abc")
        logging.getLogger("sn19.test").info("hello %s", "world")
        request_id_var.reset(token)
        line = json.loads(stream.getvalue().strip().splitlines()[-1])
        assert line["message"] == "hello world"
        assert line["request_id"] == "req_abc"
        assert line["level"] == "INFO"
    finally:
        configure_logging(TelemetrySettings(log_level="WARNING"), stream=io.StringIO())
