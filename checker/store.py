"""Writing check results: exactly one ``check_results`` row per job, whatever the redeliveries.

One transaction per job:

1. ``INSERT ... ON CONFLICT (job_id) DO NOTHING`` into ``check_jobs``: no row inserted means the
   job was stored before (a worker died after committing but before acknowledging, or a slow
   job was reclaimed and finished twice) → nothing else is written;
2. text jobs at temperature > 0: the miner's sequential greedy detector (``check_detectors``,
   row-locked) folds in this job's e-value; an alarm turns the job's quality to 0;
3. the ``check_results`` row scoring reads (task, miner, quality, work, response time, organic)
   and the job row's link to it, reason and evidence.

The sequential detector is an e-CUSUM (Shin, Ramdas & Rinaldo, "E-detectors", 2023):
``M_n = max(M_{n-1}, 1) · E_n``, alarm when ``M_n ≥ 1/α``; for an honest miner the mean number
of jobs before a false alarm is at least ``1/α`` (``sequential_alpha``, default 1e-4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from checker.outcome import CHECKER_VERSION, CheckOutcome, clean
from core.db import Database, insert_ignore, rowcount, utcnow
from core.db.tables.checks import CheckDetector, CheckJobRecord
from core.db.tables.scoring import CheckResult

# Detector → what its alarm means.
DETECTORS = {
    "greedy": "outputs at temperature > 0 are consistently more likely than samples of the "
    "requested distribution (greedy or colder sampling)",
    "padding": "outputs consistently avoid the end-of-sequence token where the model would "
    "have stopped",
}


@dataclass(frozen=True, slots=True)
class ResultRecord:
    job_id: str
    task: str
    kind: str
    miner_hotkey: str
    miner_uid: int
    organic: bool
    response_time_s: float
    started: float
    request_id: str = ""
    receipt: str | None = None
    deliveries: int = 1
    check_seconds: float = 0.0
    checked_by: str = ""


@dataclass(frozen=True, slots=True)
class Stored:
    stored: bool  # False: the job had been stored before (nothing written)
    quality: float
    code: str


def _created_at(started: float) -> datetime:
    """When the miner did the work (the request's start), if plausible; else now."""
    now = utcnow()
    if 0 < started <= now.timestamp() + 60:
        return datetime.fromtimestamp(started, UTC)
    return now


async def store_result(
    db: Database, record: ResultRecord, outcome: CheckOutcome, *, sequential_alpha: float = 0.0
) -> Stored:
    async with db.transaction() as session:
        inserted = await session.execute(
            insert_ignore(
                db.dialect,
                CheckJobRecord,
                {
                    "job_id": record.job_id,
                    "result_id": None,
                    "task": record.task,
                    "kind": record.kind,
                    "miner_hotkey": record.miner_hotkey,
                    "miner_uid": record.miner_uid,
                    "organic": record.organic,
                    "reason": "",
                    "evidence": {},
                    "request_id": record.request_id[:256],
                    "receipt": record.receipt,
                    "deliveries": record.deliveries,
                    "check_seconds": record.check_seconds,
                    "checker_version": CHECKER_VERSION,
                    "checked_by": record.checked_by[:128],
                    "checked_at": utcnow(),
                },
                ["job_id"],
            )
        )
        if rowcount(inserted) == 0:
            return Stored(stored=False, quality=outcome.quality, code="duplicate")
        if sequential_alpha > 0:
            for name in sorted(outcome.sequential):
                outcome = await _fold_detector(db, session, record, outcome, name, sequential_alpha)
        result = CheckResult(
            task=record.task,
            miner_hotkey=record.miner_hotkey,
            quality=min(1.0, max(0.0, outcome.quality)),
            work=max(0.0, outcome.work),
            response_time_s=max(0.0, record.response_time_s),
            organic=record.organic,
            created_at=_created_at(record.started),
        )
        session.add(result)
        await session.flush()
        reason = f"{outcome.code}: {outcome.reason}" if outcome.code else ""
        await session.execute(
            update(CheckJobRecord)
            .where(CheckJobRecord.job_id == record.job_id)
            .values(result_id=result.id, reason=reason, evidence=clean(outcome.evidence))
        )
    return Stored(stored=True, quality=result.quality, code=outcome.code)


async def _fold_detector(
    db: Database,
    session: AsyncSession,
    record: ResultRecord,
    outcome: CheckOutcome,
    name: str,
    alpha: float,
) -> CheckOutcome:
    log_e = outcome.sequential[name]
    key = {"task": record.task, "miner_hotkey": record.miner_hotkey, "name": name}
    await session.execute(
        insert_ignore(
            db.dialect,
            CheckDetector,
            {**key, "log_value": 0.0, "jobs": 0, "alarms": 0, "updated_at": utcnow()},
            list(key),
        )
    )
    statement = select(CheckDetector).filter_by(**key).with_for_update()
    detector = (await session.execute(statement)).scalar_one()
    before = detector.log_value
    value = max(before, 0.0) + log_e
    if math.isnan(value):
        value = 0.0
    value = min(max(value, -1e6), 1e6)
    bound = math.log(1.0 / alpha)
    alarm = value >= bound
    detector.log_value = value
    detector.jobs += 1
    detector.alarms += int(alarm)
    detector.updated_at = utcnow()
    evidence = dict(outcome.evidence)
    sequential = dict(evidence.get("sequential", {}))
    sequential[name] = {
        "log_e_job": log_e,
        "log_value_before": before,
        "log_value": value,
        "bound": bound,
        "alarm": alarm,
    }
    evidence["sequential"] = sequential
    outcome.evidence = evidence
    if not alarm or outcome.quality <= 0.0:
        return outcome
    return CheckOutcome(
        quality=0.0,
        code=f"sequential_{name}",
        reason=(
            f"this miner's {DETECTORS.get(name, name)}: sequential log e-value {value:.1f} ≥ "
            f"{bound:.1f}"
        ),
        evidence=evidence,
        work=outcome.work,
        sequential=outcome.sequential,
    )
