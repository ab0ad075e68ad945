"""`sn19 scoring`: run the validator loop."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from core.settings import Settings


async def _main(settings: Settings) -> None:
    from scoring.runner import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop=stop)


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None)
def command(config_file: str | None) -> None:
    """Run the scoring loop (metagraph, capacities, routes; periods, synthetics and weights)."""
    settings = Settings.from_env(config_file=config_file)
    logging.basicConfig(
        level=settings.telemetry.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_main(settings))
