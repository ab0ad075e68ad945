"""`sn19 operators`: the first administrator comes from the command line."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from core.db.engine import Database
from sn19.commands.operators import command
from web import User, UserService


def _authenticate(url: str, email: str, password: str) -> User | None:
    async def check() -> User | None:
        db = Database.from_url(url)
        try:
            return await UserService(db).authenticate(email, password)
        finally:
            await db.dispose()

    return asyncio.run(check())


def test_create_list_disable_and_set_password(fresh_sqlite_url: str) -> None:
    runner = CliRunner()
    env = {"SN19_DATABASE__URL": fresh_sqlite_url}
    created = runner.invoke(
        command,
        ["create", "--email", "Ops@Example.com", "--password-stdin"],
        input="a very good password\n",
        env=env,
    )
    assert created.exit_code == 0, created.output
    assert "ops@example.com (admin) created" in created.output
    user = _authenticate(fresh_sqlite_url, "ops@example.com", "a very good password")
    assert user is not None and user.is_admin
    again = runner.invoke(
        command,
        ["create", "--email", "ops@example.com", "--password-stdin"],
        input="a very good password\n",
        env=env,
    )
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(
        command,
        ["create", "--email", "b@example.com", "--password-stdin"],
        input="short\n",
        env=env,
    )
    assert short.exit_code != 0 and "at least 10" in short.output
    support = runner.invoke(
        command,
        ["create", "--email", "help@example.com", "--role", "support", "--password-stdin"],
        input="another good password\n",
        env=env,
    )
    assert support.exit_code == 0
    listing = runner.invoke(command, ["list"], env=env)
    assert "ops@example.com" in listing.output and "support" in listing.output
    assert runner.invoke(command, ["disable", "help@example.com"], env=env).exit_code == 0
    assert _authenticate(fresh_sqlite_url, "help@example.com", "another good password") is None
    assert runner.invoke(command, ["enable", "help@example.com"], env=env).exit_code == 0
    changed = runner.invoke(
        command,
        ["set-password", "ops@example.com", "--password-stdin"],
        input="the new password!\n",
        env=env,
    )
    assert changed.exit_code == 0
    assert _authenticate(fresh_sqlite_url, "ops@example.com", "the new password!") is not None


def test_refuses_an_unmigrated_database(tmp_path: object) -> None:
    result = CliRunner().invoke(
        command, ["list"], env={"SN19_DATABASE__URL": "sqlite+aiosqlite:////nonexistent/dir/x.db"}
    )
    assert result.exit_code != 0 and "sn19 db upgrade" in result.output
