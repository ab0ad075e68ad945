"""The checker's own tables, beside scoring's ``check_results`` (which they extend, untouched).

- ``check_jobs``: one row per check job ever stored, keyed by the job id. The worker inserts it
  in the same transaction as the job's ``check_results`` row, so a redelivered job (a worker
  that died after writing but before acknowledging, or a slow job reclaimed by another worker)
  never creates a second result. It keeps what scoring does not need but an operator or a
  disputing miner does: why the score is what it is (``reason``, ``evidence``), the miner's uid,
  the request kind, the receipt, and when and by which checker version it was checked. Rows
  follow their ``check_results`` row when scoring prunes it (``ON DELETE CASCADE``).
- ``check_detectors``: sequential evidence per (task, miner, detector): the e-CUSUM statistic
  of the text check's "greedy instead of sampling" detector (docs/checker.md), updated in the
  transaction that stores each job's result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow

HOTKEY = 64


class CheckJobRecord(Base):
    __tablename__ = "check_jobs"
    __table_args__ = (
        Index("ix_check_jobs_task_miner_hotkey_checked_at", "task", "miner_hotkey", "checked_at"),
        # A customer's request → its check, if it was sampled (``GET /v1/requests/{id}``).
        Index("ix_check_jobs_request_id", "request_id"),
    )

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    result_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("check_results.id", ondelete="CASCADE"),
        index=True,
    )
    task: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    miner_hotkey: Mapped[str] = mapped_column(String(HOTKEY))
    miner_uid: Mapped[int] = mapped_column(Integer, default=-1)
    organic: Mapped[bool] = mapped_column(Boolean, default=False)
    # Empty when the result passed every check; else the rule that decided (docs/checker.md).
    reason: Mapped[str] = mapped_column(Text, default="")
    # The numbers behind the score (statistics, distances, thresholds).
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str] = mapped_column(String(256), default="")
    receipt: Mapped[str | None] = mapped_column(Text)
    # Times the queue delivered the job before it was stored (>1: a worker died or was slow).
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    check_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    checker_version: Mapped[str] = mapped_column(String(32), default="")
    checked_by: Mapped[str] = mapped_column(String(128), default="")
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckDetector(Base):
    __tablename__ = "check_detectors"

    task: Mapped[str] = mapped_column(String(128), primary_key=True)
    miner_hotkey: Mapped[str] = mapped_column(String(HOTKEY), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # log of the detector statistic (e-CUSUM: log max(M, 1) carried into the next job).
    log_value: Mapped[float] = mapped_column(Float, default=0.0)
    jobs: Mapped[int] = mapped_column(BigInteger, default=0)
    alarms: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
