"""`sn19 doctor` against real services: a database that is down, one never migrated (SQLite and
PostgreSQL), Redis down, a missing wallet, and everything fine. Each failure is one line with
its fix, and the exit status is 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from protocol.config import ConfigError
from sn19.cli import main
from tests.support.db import (
    create_postgres_database,
    create_sqlite_database,
    drop_postgres_database,
    run_in_thread,
)
from tests.support.net import free_port
from tests.support.redis_fixtures import REDIS_URL
from tests.support.wallets import make_wallet

pytestmark = pytest.mark.redis


def doctor(tmp_path: Path, *, database: str, redis: str, wallet: Path) -> tuple[int, str]:
    config = tmp_path / "validator.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n'
        f'[database]\nurl = "{database}"\n'
        f'[redis]\nurl = "{redis}"\n'
        f'[wallet]\nname = "validator"\nhotkey = "default"\npath = "{wallet}"\n',
        "utf-8",
    )
    result = CliRunner().invoke(main, ["doctor", "--config", str(config)])
    if isinstance(result.exception, ConfigError):
        raise result.exception
    return result.exit_code, result.output


def lines(output: str) -> dict[str, str]:
    """check name -> its line (and its fix line, when there is one)."""
    found: dict[str, str] = {}
    last = ""
    for line in output.splitlines():
        if line.startswith("       fix:"):
            found[last] += "\n" + line
            continue
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("ok", "FAIL", "skip"):
            last = parts[1]
            found[last] = line
    return found


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    return run_in_thread(create_sqlite_database, tmp_path)


@pytest.fixture
def wallet(tmp_path: Path) -> Path:
    root = tmp_path / "wallets"
    make_wallet(root, "validator")
    return root


def test_everything_fine(tmp_path, migrated, wallet):
    code, output = doctor(tmp_path, database=migrated, redis=REDIS_URL, wallet=wallet)
    assert code == 0, output
    found = lines(output)
    assert [name for name in found] == ["database", "redis", "wallet", "disk"]
    assert all(line.startswith("ok") for line in found.values()), output
    assert "at migration head" in found["database"] and "answers PING" in found["redis"]
    assert output.rstrip().endswith("all checks passed")


def test_database_down(tmp_path, wallet):
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/sn19"
    code, output = doctor(tmp_path, database=dead, redis=REDIS_URL, wallet=wallet)
    assert code == 1
    found = lines(output)
    assert found["database"].startswith("FAIL") and "does not answer" in found["database"]
    assert "fix: start the database server" in found["database"]
    assert found["redis"].startswith("ok") and found["wallet"].startswith("ok")


def test_sqlite_never_migrated(tmp_path, wallet):
    empty = tmp_path / "empty.db"
    empty.touch()
    code, output = doctor(
        tmp_path, database=f"sqlite+aiosqlite:///{empty}", redis=REDIS_URL, wallet=wallet
    )
    assert code == 1
    database = lines(output)["database"]
    assert "(empty: never migrated)" in database and "fix: run `sn19 db upgrade`" in database
    code, output = doctor(
        tmp_path,
        database=f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}",
        redis=REDIS_URL,
        wallet=wallet,
    )
    assert code == 1 and "no database at" in lines(output)["database"]


@pytest.mark.postgres
def test_postgres_never_migrated(tmp_path, wallet):
    url = run_in_thread(lambda: create_postgres_database("sn19_doctor", migrate=False))
    try:
        code, output = doctor(tmp_path, database=url, redis=REDIS_URL, wallet=wallet)
    finally:
        run_in_thread(drop_postgres_database, url)
    assert code == 1
    database = lines(output)["database"]
    assert database.startswith("FAIL") and "(empty: never migrated)" in database
    assert "fix: run `sn19 db upgrade`" in database


def test_redis_down(tmp_path, migrated, wallet):
    code, output = doctor(
        tmp_path, database=migrated, redis=f"redis://127.0.0.1:{free_port()}/0", wallet=wallet
    )
    assert code == 1
    found = lines(output)
    assert found["redis"].startswith("FAIL") and "fix: start Redis" in found["redis"]
    assert found["database"].startswith("ok")


def test_wallet_missing(tmp_path, migrated):
    code, output = doctor(
        tmp_path, database=migrated, redis=REDIS_URL, wallet=tmp_path / "no-wallets"
    )
    assert code == 1
    wallet = lines(output)["wallet"]
    assert (
        wallet.startswith("FAIL") and "validator/default" in wallet and "fix: create it" in wallet
    )
    assert "1 check(s) failed: wallet" in output
