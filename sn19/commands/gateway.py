"""`sn19 gateway`: serve the OpenAI-compatible API.

Settings come from defaults < the TOML file (``--config`` or ``SN19_CONFIG``) < the environment
(``SN19_*``) < the flags below.
"""

from __future__ import annotations

from typing import Any

import click

from core.logging import configure_logging
from core.settings import Settings
from protocol.catalog import CatalogError
from protocol.config import ConfigError


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $SN19_CONFIG).",
)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
def command(config_file: str | None, host: str | None, port: int | None) -> None:
    """Serve the OpenAI-compatible API (granian by default; gateway.server = "uvicorn")."""
    gateway: dict[str, Any] = {
        key: value for key, value in (("host", host), ("port", port)) if value is not None
    }
    try:
        settings = Settings.from_env(
            config_file=config_file, overrides={"gateway": gateway} if gateway else None
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.telemetry)
    if settings.billing.enabled:
        _check_database(settings)
    from gateway.server import run
    from sn19.compose import gateway_app

    try:
        run(settings, gateway_app)
    except (ConfigError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from exc


def _check_database(settings: Settings) -> None:
    """Billing on: the database must exist and be at the migrations' head (the app checks it
    again when it starts; this says so before the server is up, in plain words)."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from core.db.migrate import SchemaOutdated, require_head

    try:
        asyncio.run(require_head(settings.database_url))
    except SchemaOutdated as exc:
        raise click.ClickException(str(exc)) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"billing is on and the database is unreachable: {exc}") from exc
