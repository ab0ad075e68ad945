"""The result of ``sn19 ledger verify`` as Prometheus metrics, for node_exporter's textfile
collector (``sn19 ledger verify --metrics-file``): the verify is a scheduled job, not a server,
so it leaves its last result in a file that a scrape reads (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from billing.ledger import VerifyReport


def verify_registry(report: VerifyReport, now: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge(
        "sn19_ledger_verify_ok",
        "1 when the last `sn19 ledger verify` found every balance, running balance and hold "
        "consistent, else 0.",
        registry=registry,
    ).set(1 if report.ok else 0)
    problems = Gauge(
        "sn19_ledger_verify_problems",
        "Problems the last `sn19 ledger verify` found, by kind.",
        ["kind"],
        registry=registry,
    )
    problems.labels("balance_mismatch").set(len(report.mismatches))
    problems.labels("chain_break").set(len(report.chain_breaks))
    problems.labels("hold").set(len(report.hold_problems))
    Gauge(
        "sn19_ledger_verify_entries",
        "Ledger entries the last `sn19 ledger verify` checked.",
        registry=registry,
    ).set(report.entries)
    Gauge(
        "sn19_ledger_verify_timestamp_seconds",
        "Unix time the last `sn19 ledger verify` finished.",
        registry=registry,
    ).set(now)
    return registry


def write_verify_metrics(report: VerifyReport, path: Path, now: float) -> None:
    """Write atomically (a temporary file renamed), as the textfile collector expects."""
    write_to_textfile(str(path), verify_registry(report, now))
