"""The scoring process's metrics: the leader gauge follows leadership at each scrape, and every
enabled task gets a routes gauge, 0 when the publication left it without a route."""

from __future__ import annotations

from prometheus_client import generate_latest

from scoring.metrics import ScoringMetrics


def test_leader_gauge_reads_leadership_at_scrape_time() -> None:
    metrics = ScoringMetrics()
    leading = [False]
    metrics.follow_leadership(lambda: leading[0])
    assert metrics.registry.get_sample_value("sn19_scoring_leader") == 0
    leading[0] = True
    assert metrics.registry.get_sample_value("sn19_scoring_leader") == 1
    assert b"sn19_scoring_leader 1.0" in generate_latest(metrics.registry)


def test_tasks_without_routes_read_zero() -> None:
    metrics = ScoringMetrics()
    metrics.published(["chat", "image"], {"chat": 3}, now=1000.0)
    value = metrics.registry.get_sample_value
    assert value("sn19_scoring_routes", {"task": "chat"}) == 3
    assert value("sn19_scoring_routes", {"task": "image"}) == 0
    assert value("sn19_scoring_routes_published_timestamp_seconds") == 1000.0
    metrics.published(["chat", "image"], {}, now=1001.0)
    assert value("sn19_scoring_routes", {"task": "chat"}) == 0


def test_only_accepted_weights_move_the_set_timestamp() -> None:
    metrics = ScoringMetrics()
    value = metrics.registry.get_sample_value
    metrics.weights_run("refused", 50.0)
    assert value("sn19_scoring_weights_set_timestamp_seconds") == 0
    assert value("sn19_scoring_weights_run_timestamp_seconds", {"status": "refused"}) == 50.0
    metrics.weights_run("set", 60.0)
    assert value("sn19_scoring_weights_set_timestamp_seconds") == 60.0


def test_the_metrics_port_answers_the_containers_healthcheck() -> None:
    """deploy/compose.yaml's scoring healthcheck asks /healthz on scoring.metrics_port: the
    exporter answers every path with the metrics."""
    import urllib.request

    from scoring.metrics import serve_metrics
    from tests.support.net import free_port

    metrics = ScoringMetrics()
    metrics.follow_leadership(lambda: True)
    port = free_port()
    server = serve_metrics(metrics, "127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            assert b"sn19_scoring_leader 1.0" in response.read()
    finally:
        server.shutdown()
