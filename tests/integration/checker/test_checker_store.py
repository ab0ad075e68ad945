"""Storing results on SQLite and PostgreSQL: one row per job however often it is stored, the
columns scoring reads, and the sequential detectors."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import pytest
from sqlalchemy import delete, func, select

from checker.outcome import CheckOutcome, failed, passed
from checker.store import ResultRecord, store_result
from core.db.engine import Database
from core.db.tables.checks import CheckDetector, CheckJobRecord
from core.db.tables.scoring import CheckResult


def record(job_id: str | None = None, hotkey: str | None = None, **fields) -> ResultRecord:
    base = {
        "job_id": job_id or uuid.uuid4().hex,
        "task": "sn19-tiny-chat",
        "kind": "chat",
        "miner_hotkey": hotkey or f"5H{uuid.uuid4().hex[:20]}",
        "miner_uid": 4,
        "organic": True,
        "response_time_s": 2.0,
        "started": time.time() - 100.0,
        "request_id": "req_1",
        "receipt": "beef",
        "deliveries": 1,
        "check_seconds": 0.01,
        "checked_by": "test",
    }
    return ResultRecord(**{**base, **fields})


async def rows(db: Database, job_id: str):
    async with db.read() as session:
        result = await session.execute(
            select(CheckJobRecord, CheckResult)
            .join(CheckResult, CheckResult.id == CheckJobRecord.result_id)
            .where(CheckJobRecord.job_id == job_id)
        )
        return result.all()


async def test_a_result_is_stored_once_whatever_the_redeliveries(db: Database) -> None:
    rec = record()
    outcome = passed(0.75, {"x": 1.23456789}, work=64)
    first = await store_result(db, rec, outcome)
    again = await store_result(db, rec, failed("bad_job", "would differ"))
    racing = await asyncio.gather(*(store_result(db, rec, outcome) for _ in range(4)))
    assert first.stored and not again.stored and not any(r.stored for r in racing)
    [(job, result)] = await rows(db, rec.job_id)
    assert (result.task, result.miner_hotkey, result.quality) == (rec.task, rec.miner_hotkey, 0.75)
    assert (result.work, result.response_time_s, result.organic) == (64, 2.0, True)
    assert result.created_at.timestamp() == pytest.approx(rec.started, abs=1e-3)
    assert (job.reason, job.evidence, job.miner_uid, job.receipt) == ("", {"x": 1.23457}, 4, "beef")


async def test_a_zero_keeps_its_reason_and_evidence(db: Database) -> None:
    rec = record()
    await store_result(db, rec, failed("likelihood", "not a sample", {"z": -math.inf}))
    [(job, result)] = await rows(db, rec.job_id)
    assert result.quality == 0.0
    assert job.reason == "likelihood: not a sample" and job.evidence == {"z": "-inf"}


async def test_pruned_results_take_their_job_rows_along(db: Database) -> None:
    rec = record()
    await store_result(db, rec, passed(1.0, {}))
    async with db.transaction() as session:
        await session.execute(
            delete(CheckResult).where(CheckResult.miner_hotkey == rec.miner_hotkey)
        )
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(CheckJobRecord)
            .where(CheckJobRecord.job_id == rec.job_id)
        )
    assert count == 0


async def test_the_sequential_detector_alarms_and_recovers(db: Database) -> None:
    hotkey = f"5Seq{uuid.uuid4().hex[:16]}"

    def job(log_e: float) -> CheckOutcome:
        outcome = passed(1.0, {})
        outcome.sequential = {"greedy": log_e}
        return outcome

    alpha = 1e-4  # alarm at log(1e4) = 9.21
    results = []
    for log_e in (4.0, -1.0, 4.0, 3.0, 3.0, -50.0, 2.0):
        results.append(
            await store_result(db, record(hotkey=hotkey), job(log_e), sequential_alpha=alpha)
        )
    # 4 → 3 → 7 → 10 (alarm) → 13 (alarm) → -37 → 2
    assert [r.code for r in results] == [
        "",
        "",
        "",
        "sequential_greedy",
        "sequential_greedy",
        "",
        "",
    ]
    assert [r.quality for r in results] == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    async with db.read() as session:
        detector = (
            await session.execute(select(CheckDetector).filter_by(miner_hotkey=hotkey))
        ).scalar_one()
    assert (detector.jobs, detector.alarms, detector.log_value) == (7, 2, 2.0)
    # Off when the task's sequential_alpha is 0; an EOS-ended job (-inf) resets the statistic.
    quiet = await store_result(db, record(hotkey=hotkey), job(100.0), sequential_alpha=0.0)
    assert quiet.code == ""
    reset = job(-math.inf)
    await store_result(db, record(hotkey=hotkey), reset, sequential_alpha=alpha)
    async with db.read() as session:
        detector = (
            await session.execute(select(CheckDetector).filter_by(miner_hotkey=hotkey))
        ).scalar_one()
    assert detector.log_value <= 0.0
