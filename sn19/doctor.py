"""`sn19 doctor`: a validator's settings checked against the machine, one line per check with
what to do about a failure.

Checks, in order: the database answers and is at this code's migration head; Redis answers
(skipped when ``redis.url`` is empty: each process then embeds its own); the wallet's hotkey
loads; the data directory's disk has room. Each check is bounded in time, so a host that drops
packets makes a failed line, not a hang.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from core.settings import Settings

CHECK_TIMEOUT_S = 10.0
MIN_FREE_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False

    def line(self) -> str:
        mark = "skip" if self.skipped else "ok" if self.ok else "FAIL"
        fix = f"\n       fix: {self.fix}" if self.fix and not self.ok else ""
        return f"{mark:<4}  {self.name:<9} {self.detail}{fix}"


async def check_database(settings: Settings) -> Finding:
    from core.db.migrate import current_revision_async, head_revision, sqlite_file_missing

    url = settings.database_url
    shown = make_url(url).render_as_string(hide_password=True)
    if sqlite_file_missing(url):
        return Finding("database", False, f"no database at {shown}", "run `sn19 db upgrade`")
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            current = await current_revision_async(url)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else _first_line(exc)
        return Finding(
            "database",
            False,
            f"{shown} does not answer: {reason}",
            "start the database server, or correct database.url (SN19_DATABASE__URL)",
        )
    head = await asyncio.to_thread(head_revision)
    if current != head:
        return Finding(
            "database",
            False,
            f"{shown} is at revision {current or '(empty: never migrated)'}, this code expects "
            f"{head}",
            "run `sn19 db upgrade` (with the same settings)",
        )
    return Finding("database", True, f"{shown} answers, at migration head {head}")


async def check_redis(settings: Settings) -> Finding:
    url = settings.redis.url
    if not url:
        return Finding(
            "redis", True, "redis.url is empty: each process embeds its own", skipped=True
        )
    from redis.exceptions import RedisError

    from core.redis import create_redis

    client = create_redis(url, max_connections=1)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else _first_line(exc)
        return Finding(
            "redis",
            False,
            f"{_hide_password(url)} does not answer: {reason}",
            "start Redis, or correct redis.url (SN19_REDIS__URL)",
        )
    finally:
        await client.aclose()
    return Finding("redis", True, f"{_hide_password(url)} answers PING")


async def check_wallet(settings: Settings) -> Finding:
    from core.wallet import load_signer

    name = f"{settings.wallet.name}/{settings.wallet.hotkey}"
    try:
        signer = await asyncio.to_thread(load_signer, settings)
    except Exception as exc:  # noqa: BLE001 - bittensor raises several kinds for a bad keyfile
        return Finding(
            "wallet",
            False,
            f"hotkey {name} under {settings.wallet_path} does not load: {_first_line(exc)}",
            "create it (`btcli wallet new_hotkey`), or correct wallet.name, wallet.hotkey and "
            "wallet.path",
        )
    return Finding("wallet", True, f"hotkey {name} loads: {signer.hotkey}")


async def check_disk(settings: Settings) -> Finding:
    path = settings.data_path
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    detail = f"{free / (1 << 30):.1f} GiB free at {existing}"
    if free < MIN_FREE_BYTES:
        return Finding(
            "disk",
            False,
            f"{detail}, under {MIN_FREE_BYTES >> 30} GiB",
            "free some space, or point data_dir at a larger disk",
        )
    return Finding("disk", True, detail)


CHECKS: tuple[Callable[[Settings], Awaitable[Finding]], ...] = (
    check_database,
    check_redis,
    check_wallet,
    check_disk,
)


async def run_checks(settings: Settings) -> list[Finding]:
    return [await check(settings) for check in CHECKS]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
