"""`sn19 ledger verify|show`: prove every balance equals its ledger; read an account's ledger."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from billing.components import Billing
from billing.format import format_time, render_table
from billing.ledger import VerifyReport
from billing.money import format_credits
from billing.verify_metrics import write_verify_metrics
from sn19.commands.db import config_option, run_billing


@click.group()
def command() -> None:
    """Verify the credit ledger."""


@command.command("verify")
@config_option
@click.option("--account", "accounts", type=int, multiple=True, help="Only these accounts.")
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the result as Prometheus metrics to this file (node_exporter's textfile "
    "collector; docs/operations.md).",
)
def verify(config_file: str | None, accounts: tuple[int, ...], metrics_file: Path | None) -> None:
    """Check balance == SUM(ledger), the running balances and every hold; exit 1 on any problem."""

    async def action(billing: Billing) -> VerifyReport:
        return await billing.accounts.verify(list(accounts) or None)

    report = run_billing(config_file, action, use_redis=False)
    if metrics_file is not None:
        write_verify_metrics(report, metrics_file, time.time())
    click.echo(f"checked {report.accounts} account(s), {report.entries} ledger entries")
    if report.ok:
        click.echo("OK: every balance equals its ledger; every hold is consistent")
        return
    if report.mismatches:
        click.echo("\nBALANCE MISMATCHES", err=True)
        rows = [
            [a, format_credits(b), format_credits(s), format_credits(b - s)]
            for a, b, s in report.mismatches
        ]
        click.echo(render_table(["account", "balance", "ledger sum", "difference"], rows), err=True)
    if report.chain_breaks:
        click.echo("\nRUNNING-BALANCE BREAKS (account, first entries)", err=True)
        for account_id, entry_id in report.chain_breaks[:50]:
            click.echo(f"  account {account_id}: entry {entry_id}", err=True)
    if report.hold_problems:
        click.echo("\nHOLD PROBLEMS", err=True)
        for problem in report.hold_problems[:100]:
            click.echo(f"  {problem}", err=True)
    click.echo("\nFAILED: the ledger does not verify", err=True)
    sys.exit(1)


@command.command("show")
@config_option
@click.argument("account_id", type=int)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def show(config_file: str | None, account_id: int, limit: int) -> None:
    """The newest ledger entries of ACCOUNT_ID."""

    async def action(billing: Billing) -> tuple[list[list[object]], int, int]:
        balance = await billing.accounts.balance(account_id)
        lines = await billing.accounts.ledger_entries(account_id, limit=limit)
        rows: list[list[object]] = [
            [
                line.id,
                format_time(line.created_at),
                line.kind,
                format_credits(line.amount),
                format_credits(line.balance_after),
                line.actor,
                line.reason,
                line.reference or "",
            ]
            for line in lines
        ]
        return rows, balance.available, balance.held

    rows, available, held = run_billing(config_file, action, use_redis=False)
    click.echo(
        f"account {account_id}: available {format_credits(available)}, held {format_credits(held)}"
    )
    headers = ["id", "time (UTC)", "kind", "amount", "balance", "actor", "reason", "reference"]
    click.echo(render_table(headers, rows) if rows else "no ledger entries")
