"""`sn19 doctor`: check the settings against the machine (``sn19.doctor``); exit 1 when a check
fails."""

from __future__ import annotations

import asyncio

import click

from sn19.commands.db import config_option, load_settings


@click.command()
@config_option
def command(config_file: str | None) -> None:
    """Check the database, Redis, the wallet and the disk for these settings."""
    from sn19.doctor import run_checks

    settings = load_settings(config_file)
    findings = asyncio.run(run_checks(settings))
    for finding in findings:
        click.echo(finding.line())
    failed = [f.name for f in findings if not f.ok]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise SystemExit(1)
    click.echo("all checks passed")
