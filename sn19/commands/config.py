"""`sn19 config show`: the effective validator settings, secrets masked."""

from __future__ import annotations

import click
import msgspec

from core.settings import Settings
from protocol.config import dump_settings


@click.group()
def command() -> None:
    """Inspect settings."""


@command.command("show")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None)
def show(config_file: str | None) -> None:
    """Print the effective settings as JSON."""
    settings = Settings.from_env(config_file=config_file)
    click.echo(msgspec.json.format(msgspec.json.encode(dump_settings(settings)), indent=2))
