"""The billing CLI commands end to end on a temporary SQLite database (click's CliRunner)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from core.db.migrate import head_revision
from sn19.cli import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "validator.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\nenvironment = "dev"\ncatalog = "dev"\n'
        '[billing]\nkey_hash_secret = "cli-test-secret"\n',
        "utf-8",
    )
    return str(path)


def run(config: str, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [*args[:2], "--config", config, *args[2:]])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_commands_before_upgrade_say_so(config: str) -> None:
    result = run(config, "keys", "list", ok=False)
    assert result.exit_code == 1 and "sn19 db upgrade" in result.output
    result = run(config, "db", "current", ok=False)
    assert result.exit_code == 1 and "sn19 db upgrade" in result.output


def test_full_workflow(config: str, tmp_path: Path) -> None:
    head = head_revision()
    assert f"upgraded (empty) -> {head}" in run(config, "db", "upgrade").output
    assert f"already at {head}" in run(config, "db", "upgrade").output
    assert "up to date" in run(config, "db", "current").output

    out = run(
        config, "accounts", "create", "acme", "--email", "ops@acme.test", "--credits", "12.5"
    ).output
    assert "account 1 'acme' created; balance 12.500000 credits" in out
    listing = run(config, "accounts", "list").output
    assert "acme" in listing and "12.500000" in listing

    out = run(
        config,
        "keys",
        "create",
        "--account",
        "1",
        "--name",
        "ci",
        "--models",
        "sn19-tiny-chat",
        "--rpm",
        "30",
        "--daily-cap",
        "2",
        "--expires",
        "30d",
    ).output
    secret = re.search(r"sk-sn19-[A-Za-z0-9]{38}", out)
    assert secret is not None and "shown only once" in out
    listing = run(config, "keys", "list").output
    assert secret.group(0) not in listing
    assert secret.group(0)[:12] in listing and "sn19-tiny-chat" in listing and "2.000000" in listing

    out = run(
        config, "keys", "update", "1", "--all-models", "--rpm", "0", "--daily-cap", "none"
    ).output
    assert "updated" in out and " * " in out
    rotated = run(config, "keys", "rotate", "1").output
    new_secret = re.search(r"sk-sn19-[A-Za-z0-9]{38}", rotated)
    assert new_secret is not None and new_secret.group(0) != secret.group(0)
    assert "revoked" in run(config, "keys", "revoke", "1").output
    assert "revoked" in run(config, "keys", "list", "--account", "1").output

    assert (
        "balance 15.000000"
        in run(config, "credits", "grant", "1", "2.5", "--reason", "promo").output
    )
    out = run(
        config, "credits", "adjust", "1", "-0.000001", "--reason", "rounding", "--actor", "alice"
    ).output
    assert "balance 14.999999" in out
    bad = run(config, "credits", "grant", "1", "0.0000001", "--reason", "x", ok=False)
    assert bad.exit_code == 2 and "6 decimals" in bad.output
    bad = run(config, "credits", "grant", "1", "-5", "--reason", "x", ok=False)
    assert bad.exit_code == 2

    assert (
        "input 0.250000 /1M"
        in run(config, "prices", "set", "sn19-tiny-chat", "--input", "0.25").output
    )
    prices = run(config, "prices", "list").output
    assert re.search(
        r"sn19-tiny-chat\s+chat\s+0\.250000\s+0\.200000\s+0\.000000\s+override", prices
    )
    assert "back to the catalog" in run(config, "prices", "reset", "sn19-tiny-chat").output
    assert run(config, "prices", "set", "nope", "--input", "1", ok=False).exit_code == 1

    ledger = run(config, "ledger", "show", "1").output
    assert "operator:" in ledger and "alice" in ledger and "rounding" in ledger
    textfile = tmp_path / "ledger.prom"
    verify = run(config, "ledger", "verify", "--metrics-file", str(textfile)).output
    assert "OK" in verify
    assert "sn19_ledger_verify_ok 1.0" in textfile.read_text()

    out = run(config, "accounts", "suspend", "1").output
    assert "suspended" in out
    assert "active" in run(config, "accounts", "activate", "1").output
    assert run(config, "accounts", "suspend", "99", ok=False).exit_code == 1


def test_verify_fails_on_a_corrupted_ledger(config: str, tmp_path: Path) -> None:
    import sqlite3

    run(config, "db", "upgrade")
    run(config, "accounts", "create", "victim", "--credits", "1")
    with sqlite3.connect(tmp_path / "data" / "sn19.db") as connection:
        connection.execute("UPDATE accounts SET balance = balance + 5")
    textfile = tmp_path / "ledger.prom"
    result = run(config, "ledger", "verify", "--metrics-file", str(textfile), ok=False)
    assert result.exit_code == 1
    assert "BALANCE MISMATCHES" in result.output and "FAILED" in result.output
    # What the SN19LedgerVerifyFailed alert reads (node_exporter's textfile collector).
    metrics = textfile.read_text()
    assert "sn19_ledger_verify_ok 0.0" in metrics
    assert 'sn19_ledger_verify_problems{kind="balance_mismatch"} 1.0' in metrics
