"""`sn19 checker`: a check-queue worker (docs/checker.md).

Run as many as the queue needs, on as many machines: they share the work through one Redis
consumer group, and a worker that dies leaves its jobs to the others. Settings come from defaults
< the TOML file (``--config`` or ``SN19_CONFIG``) < the environment (``SN19_CHECKER__*``) < the
flags below.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import click

from core.logging import configure_logging
from core.settings import Settings
from protocol.catalog import CatalogError
from protocol.config import ConfigError


async def _main(settings: Settings) -> None:
    from checker.app import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop=stop)


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $SN19_CONFIG).",
)
@click.option(
    "--consumer", default=None, help="Consumer name in the queue's group (default host-pid)."
)
@click.option("--concurrency", type=int, default=None, help="Batches checked at once (default 1).")
@click.option(
    "--metrics-port", type=int, default=None, help="Serve Prometheus /metrics on this port."
)
def command(
    config_file: str | None,
    consumer: str | None,
    concurrency: int | None,
    metrics_port: int | None,
) -> None:
    """Consume the check queue: verify miner results against the reference models."""
    checker: dict[str, Any] = {
        key: value
        for key, value in (
            ("consumer", consumer),
            ("concurrency", concurrency),
            ("metrics_port", metrics_port),
        )
        if value is not None
    }
    try:
        settings = Settings.from_env(
            config_file=config_file, overrides={"checker": checker} if checker else None
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.telemetry)
    try:
        asyncio.run(_main(settings))
    except (ConfigError, CatalogError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
