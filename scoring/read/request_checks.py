"""A request's check, if the checker sampled it (``GET /v1/requests/{id}``, the dashboard's
request page): the checker's score of the answer the miner delivered, and why."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import select

from core.db import Database
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult

# A check below this failed (the dashboard's and the miners' "failed check").
PASS_QUALITY = 0.5


class RequestCheck(msgspec.Struct, frozen=True):
    quality: float  # 0..1
    passed: bool  # quality >= 0.5
    reason: str  # the rule that decided, empty when every check passed
    checked_at: datetime
    checker_version: str = ""


async def request_check(db: Database, request_id: str, *, hotkey: str) -> RequestCheck | None:
    """The check of ``request_id`` served by ``hotkey`` (None: not sampled, not checked yet)."""
    if not request_id or len(request_id) > 256:
        return None
    job, result = CheckJobRecord, CheckResult
    stmt = (
        select(result.quality, job.reason, job.checked_at, job.checker_version)
        .join(result, result.id == job.result_id)
        .where(job.request_id == request_id, job.miner_hotkey == hotkey)
        .order_by(job.checked_at.desc())
        .limit(1)
    )
    async with db.read() as session:
        row = (await session.execute(stmt)).first()
    if row is None:
        return None
    quality, reason, checked_at, version = row
    return RequestCheck(
        quality=float(quality),
        passed=float(quality) >= PASS_QUALITY,
        reason=str(reason or ""),
        checked_at=checked_at,
        checker_version=str(version or ""),
    )
