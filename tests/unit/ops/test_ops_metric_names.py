"""deploy/prometheus/alerts.yml and deploy/grafana/sn19.json name only metrics the code exports.

The exported names come from the metric objects the processes create (the gateway's, the
checker's, the scoring process's, billing's collector and ``sn19 ledger verify --metrics-file``'s
registry), collected through prometheus_client, so a renamed metric fails here. With promtool
installed (Debian's ``prometheus`` package), the rules file is checked by it too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from billing.ledger import VerifyReport
from billing.verify_metrics import verify_registry
from checker.metrics import CheckerMetrics
from gateway.metrics import BillingCollector, GatewayMetrics
from gateway.receipts import ReceiptAuditor
from gateway.slots import SlotQueue
from scoring.metrics import ScoringMetrics

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "sn19.json"

# Series Prometheus makes itself for every scrape target (not exported by any process).
PROMETHEUS_OWN = {"up"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BRACES = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*+)(?!\s*\()")


def names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords or labels)."""
    bare = _BRACES.sub(" ", _GROUPS.sub(" ", _STRING.sub(" ", expr)))
    return {n for n in _NAME.findall(bare) if n.lower() not in PROMQL_WORDS}


def registry_names(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def exported() -> set[str]:
    gateway = CollectorRegistry()
    GatewayMetrics(gateway)
    SlotQueue(size=1, per_key=1, retry_after_s=1, registry=gateway)
    ReceiptAuditor(gateway)
    gateway.register(BillingCollector(lambda: 0))
    registries = [
        gateway,
        CheckerMetrics().registry,
        ScoringMetrics().registry,
        verify_registry(VerifyReport(), 0.0),
    ]
    return set().union(*(registry_names(r) for r in registries))


def alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_the_extractor_finds_names_not_functions_labels_or_keywords() -> None:
    expr = (
        'sum by (le, route) (rate(a_total{status=~"5..", x="y"}[5m])) / on(job) b '
        "and time() - max(c_seconds) > 2 * 86400 or absent(d)"
    )
    assert names_in(expr) == {"a_total", "b", "c_seconds", "d"}


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_used_is_exported(source: str) -> None:
    exprs = alert_exprs() if source == "alerts" else dashboard_exprs()
    assert exprs
    known = exported() | PROMETHEUS_OWN
    used = set().union(*(names_in(e) for e in exprs))
    assert used - known == set()
    assert any(name.startswith("sn19_") for name in used)


def test_the_alerts_cover_the_operations_list() -> None:
    """Issue 14's alerts: no routes, 5xx rate, checker backlog, leader lost, weights not set,
    ledger verify failed, holds expiring unreleased."""
    used = set().union(*(names_in(e) for e in alert_exprs()))
    for name in (
        "sn19_scoring_routes",
        "sn19_gateway_requests_total",
        "sn19_checker_queue_lag",
        "sn19_scoring_leader",
        "sn19_scoring_weights_set_timestamp_seconds",
        "sn19_ledger_verify_ok",
        "sn19_billing_holds_expired_total",
    ):
        assert name in used


def test_the_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
