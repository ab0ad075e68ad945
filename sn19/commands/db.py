"""`sn19 db upgrade|current`: the database migrations (Alembic, ``migrations/``).

Also home of the helpers the other billing commands share (``config_option``,
``run_billing``): load the settings, open billing on the configured database (and Redis, so
key changes reach the gateways), run one coroutine, turn domain errors into clean CLI errors.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from billing.components import Billing, open_billing
from core.errors import AppError
from core.settings import Settings
from protocol.config import ConfigError

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Validator settings file (TOML); default: SN19_CONFIG / environment.",
)


def default_actor() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def load_settings(config_file: str | None) -> Settings:
    try:
        return Settings.from_env(config_file=config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def run_billing(
    config_file: str | None, action: Callable[[Billing], Awaitable[T]], *, use_redis: bool = True
) -> T:
    settings = load_settings(config_file)

    async def main() -> T:
        async with open_billing(settings, use_redis=use_redis) as billing:
            return await action(billing)

    try:
        return asyncio.run(main())
    except (AppError, ValueError, ConfigError) as exc:
        raise click.ClickException(getattr(exc, "message", None) or str(exc)) from None
    except RedisError as exc:
        raise click.ClickException(
            f"the database change was committed, but the gateways could not be told through "
            f"Redis ({exc}); they drop cached keys within billing.auth_redis_ttl_s "
            f"({settings.billing.auth_redis_ttl_s:g}s)"
        ) from None
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"database error: {exc}") from None


def redis_note(settings: Settings) -> str | None:
    if settings.redis.url:
        return None
    return (
        "note: no redis.url configured, so running gateways were not notified; they pick the "
        f"change up within billing.auth_redis_ttl_s ({settings.billing.auth_redis_ttl_s:g}s)"
    )


def _prepare_sqlite(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


@click.group()
def command() -> None:
    """Database migrations."""


@command.command("upgrade")
@config_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade_cmd(config_file: str | None, revision: str) -> None:
    """Apply the migrations to the configured database."""
    from core.db.migrate import current_revision, upgrade

    settings = load_settings(config_file)
    url = settings.database_url
    _prepare_sqlite(url)
    try:
        before = current_revision(url)
        upgrade(url, revision)
        after = current_revision(url)
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"database error: {exc}") from None
    shown = make_url(url).render_as_string(hide_password=True)
    if before == after:
        click.echo(f"{shown}: already at {after}")
    else:
        click.echo(f"{shown}: upgraded {before or '(empty)'} -> {after}")


@command.command("current")
@config_option
def current_cmd(config_file: str | None) -> None:
    """Show the database's revision and the code's head."""
    from core.db.migrate import current_revision, head_revision, sqlite_file_missing

    settings = load_settings(config_file)
    if sqlite_file_missing(settings.database_url):
        click.echo(f"no database at {settings.database_url}: run `sn19 db upgrade`")
        raise SystemExit(1)
    try:
        current = current_revision(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"database error: {exc}") from None
    head = head_revision()
    state = "up to date" if current == head else "needs `sn19 db upgrade`"
    click.echo(f"current: {current or '(empty)'}\nhead:    {head}\n{state}")
