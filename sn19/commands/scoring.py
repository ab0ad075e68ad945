"""`sn19 scoring`: run the validator loop (docs/validating.md).

Run one per machine or several for failover: they elect one leader through Redis, the others
stand by and take over within seconds when it stops.
"""

from __future__ import annotations

import asyncio
import signal

import click

from core.logging import configure_logging
from core.settings import Settings
from protocol.catalog import CatalogError
from protocol.config import ConfigError


async def _main(settings: Settings) -> None:
    from core.db.migrate import ensure_schema
    from scoring.process import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await ensure_schema(settings.database_url)
    await run(settings, stop=stop)


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $SN19_CONFIG).",
)
def command(config_file: str | None) -> None:
    """Run the scoring loop: metagraph, capacities, periods, synthetics and weights."""
    try:
        settings = Settings.from_env(config_file=config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.telemetry)
    try:
        asyncio.run(_main(settings))
    except (ConfigError, CatalogError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
