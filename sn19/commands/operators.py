"""`sn19 operators create|list|disable|enable|set-password`: the dashboard's staff users.

The first administrator is created here; everyone else can then be invited from the
dashboard (Users page)::

    printf '%s\n' "$PASSWORD" | sn19 operators create --email ops@example.com --password-stdin
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from billing.format import format_time, render_table
from core.db.engine import Database
from core.db.migrate import SchemaOutdated, require_head
from sn19.commands.db import config_option, load_settings
from web import STAFF_ROLES, UserError, UserService

T = TypeVar("T")


def _run(config_file: str | None, action: Callable[[UserService], Awaitable[T]]) -> T:
    settings = load_settings(config_file)
    url = settings.database_url

    async def main() -> T:
        try:
            await require_head(url)
        except SchemaOutdated as exc:
            raise click.ClickException(str(exc)) from None
        db = Database.from_url(url, settings.database)
        try:
            return await action(UserService(db))
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"database error: {exc}") from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line: str = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (else: prompt).",
)


@click.group()
def command() -> None:
    """Manage the dashboard's operators (staff users)."""


@command.command("create")
@config_option
@click.option("--email", required=True, help="Sign-in e-mail address.")
@password_stdin
@click.option(
    "--role",
    type=click.Choice(STAFF_ROLES),
    default="admin",
    show_default=True,
    help="admin: everything; support: read-only.",
)
@click.option("--name", default="", help="Display name.")
def create(config_file: str | None, email: str, password_stdin: bool, role: str, name: str) -> None:
    """Create an operator who can sign in to the dashboard."""
    password = _password(password_stdin)
    user = _run(config_file, lambda users: users.create(email, password, role=role, name=name))
    click.echo(f"operator {user.id} {user.email} ({user.role}) created")


@command.command("list")
@config_option
def list_cmd(config_file: str | None) -> None:
    """List operators."""
    staff = _run(config_file, lambda users: users.staff())
    rows = [
        [
            u.id,
            u.email,
            u.role,
            "disabled" if u.disabled else "enabled",
            format_time(u.last_login_at) if u.last_login_at else "",
        ]
        for u in staff
    ]
    headers = ["id", "email", "role", "state", "last sign-in (UTC)"]
    click.echo(render_table(headers, rows) if rows else "no operators")


async def _set_disabled(users: UserService, email: str, disabled: bool) -> str:
    user = await users.by_email(email)
    if user is None or not user.is_staff:
        raise UserError(f"no operator {email}")
    await users.set_disabled(user.id, disabled)
    return user.email


@command.command("disable")
@config_option
@click.argument("email")
def disable(config_file: str | None, email: str) -> None:
    """Disable an operator (their sessions end at once)."""
    done = _run(config_file, lambda users: _set_disabled(users, email, True))
    click.echo(f"operator {done} disabled")


@command.command("enable")
@config_option
@click.argument("email")
def enable(config_file: str | None, email: str) -> None:
    """Enable a disabled operator."""
    done = _run(config_file, lambda users: _set_disabled(users, email, False))
    click.echo(f"operator {done} enabled")


async def _set_password(users: UserService, email: str, password: str) -> None:
    user = await users.by_email(email)
    if user is None:
        raise UserError(f"no user {email}")
    await users.set_password(user.id, password)


@command.command("set-password")
@config_option
@click.argument("email")
@password_stdin
def set_password(config_file: str | None, email: str, password_stdin: bool) -> None:
    """Set a user's password (their sessions end)."""
    password = _password(password_stdin)
    _run(config_file, lambda users: _set_password(users, email, password))
    click.echo(f"password of {email} changed")
