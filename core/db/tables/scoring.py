"""Scoring tables: the metagraph (nodes and their history), periods and contenders, the checker's
results, and every weight calculation with all of its inputs and outputs.

- ``nodes`` is the metagraph as last synced (one row per registered hotkey); ``node_history``
  gets a row whenever a neuron appears, changes (uid, coldkey, stake, axon, permit) or leaves.
- ``periods``: at most one is ``open`` at a time (a partial unique index), so two scoring
  processes can never open the same period twice.
- ``contenders``: one row per (period, task, miner): capacity, test quota, the counters flushed
  from Redis at close, and the period score. Closed periods' rows are the period history.
- ``check_results``: one row per checked miner result (written by the checker): the quality
  score in [0, 1], the work (tokens or steps) and the response time; speed is work/second.
- ``weight_runs`` + ``weight_run_factors`` (per task × miner: every factor of SPEC §6) +
  ``weight_run_weights`` (per miner: the final weight and its u16 value) explain any weight.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigId, utcnow

PERIOD_STATUSES = ("open", "closed")
NODE_EVENTS = ("registered", "changed", "deregistered")
WEIGHT_RUN_STATUSES = ("computed", "set", "refused", "unavailable", "skipped")
HOTKEY = 64


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("netuid", "uid"),)

    netuid: Mapped[int] = mapped_column(Integer, primary_key=True)
    hotkey: Mapped[str] = mapped_column(String(HOTKEY), primary_key=True)
    uid: Mapped[int] = mapped_column(Integer)
    coldkey: Mapped[str] = mapped_column(String(HOTKEY), default="")
    stake: Mapped[float] = mapped_column(Float, default=0.0)
    axon: Mapped[str | None] = mapped_column(String(128))
    validator_permit: Mapped[bool] = mapped_column(Boolean, default=False)
    tls_fingerprint: Mapped[str | None] = mapped_column(String(128))
    block: Mapped[int] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeHistory(Base):
    __tablename__ = "node_history"
    __table_args__ = (
        CheckConstraint(_in("event", NODE_EVENTS), name="event"),
        Index("ix_node_history_hotkey_recorded_at", "hotkey", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    netuid: Mapped[int] = mapped_column(Integer)
    hotkey: Mapped[str] = mapped_column(String(HOTKEY))
    uid: Mapped[int] = mapped_column(Integer)
    coldkey: Mapped[str] = mapped_column(String(HOTKEY), default="")
    stake: Mapped[float] = mapped_column(Float, default=0.0)
    axon: Mapped[str | None] = mapped_column(String(128))
    validator_permit: Mapped[bool] = mapped_column(Boolean, default=False)
    block: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Period(Base):
    __tablename__ = "periods"
    __table_args__ = (
        CheckConstraint(_in("status", PERIOD_STATUSES), name="status"),
        # At most one open period, whoever tries to open another.
        Index(
            "uq_periods_open",
            "status",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    status: Mapped[str] = mapped_column(String(8), default="open")
    started_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    period_s: Mapped[float] = mapped_column(Float)
    block: Mapped[int | None] = mapped_column(BigInteger)
    # The scoring instance that opened it (host:pid:token prefix), for the logs.
    opened_by: Mapped[str] = mapped_column(String(128), default="")
    # Seed of this period's draws (quota multipliers), so a period can be replayed.
    seed: Mapped[int] = mapped_column(BigInteger, default=0)


class Contender(Base):
    __tablename__ = "contenders"
    __table_args__ = (
        UniqueConstraint("period_id", "task", "hotkey"),
        Index("ix_contenders_task_hotkey_period_id", "task", "hotkey", "period_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(128))
    hotkey: Mapped[str] = mapped_column(String(HOTKEY))
    uid: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(256))
    # What the miner announced, and the same clamped to [0, max_capacity] (task units).
    announced: Mapped[float] = mapped_column(Float)
    capacity: Mapped[float] = mapped_column(Float)
    concurrency: Mapped[int] = mapped_column(Integer)
    quota_multiplier: Mapped[float] = mapped_column(Float)
    quota: Mapped[float] = mapped_column(Float)
    # Counters (flushed from Redis when the period closes).
    consumed: Mapped[float] = mapped_column(Float, default=0.0)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_limited: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    organic_volume: Mapped[float] = mapped_column(Float, default=0.0)
    organic_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    synthetic_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    # good × (1 − p429·unq) × (1 − pfail·unq); None: no requests or no capacity.
    period_score: Mapped[float | None] = mapped_column(Float)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)


class CheckResult(Base):
    """One checked miner result (the checker writes these; scoring reads them)."""

    __tablename__ = "check_results"
    __table_args__ = (
        CheckConstraint("quality >= 0 AND quality <= 1", name="quality"),
        Index("ix_check_results_task_created_at", "task", "created_at"),
        Index(
            "ix_check_results_task_miner_hotkey_created_at", "task", "miner_hotkey", "created_at"
        ),
        # Failed checks (the dashboard's counts and lists, ``scoring.read.board``): a few percent of
        # the rows. Queries must spell the predicate the same way for the index to apply.
        Index(
            "ix_check_results_failed",
            "miner_hotkey",
            "created_at",
            "task",
            postgresql_where=text("quality < 0.5"),
            sqlite_where=text("quality < 0.5"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task: Mapped[str] = mapped_column(String(128))
    miner_hotkey: Mapped[str] = mapped_column(String(HOTKEY))
    quality: Mapped[float] = mapped_column(Float)
    # Tokens generated (text, embeddings: input tokens) or diffusion steps (images).
    work: Mapped[float] = mapped_column(Float)
    # Request start to the end of the response, seconds.
    response_time_s: Mapped[float] = mapped_column(Float)
    organic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeightRun(Base):
    __tablename__ = "weight_runs"
    __table_args__ = (
        CheckConstraint(_in("status", WEIGHT_RUN_STATUSES), name="status"),
        Index("ix_weight_runs_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The latest closed period whose history fed the calculation, and the open one whose
    # capacities did.
    period_id: Mapped[int | None] = mapped_column(BigInteger)
    block: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="computed")
    message: Mapped[str] = mapped_column(Text, default="")
    version_key: Mapped[int | None] = mapped_column(BigInteger)
    # Normalised task weights, and the constants and windows of SPEC §6 used.
    task_weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    set_at: Mapped[datetime | None] = mapped_column()


class WeightRunFactor(Base):
    """One task × miner of a weight calculation: inputs → each factor → the task share."""

    __tablename__ = "weight_run_factors"
    __table_args__ = (UniqueConstraint("run_id", "task", "hotkey"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("weight_runs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(128))
    hotkey: Mapped[str] = mapped_column(String(HOTKEY))
    uid: Mapped[int | None] = mapped_column(Integer)
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    quality: Mapped[float | None] = mapped_column(Float)
    # 30th-percentile work/second of the checked results, and its rank bonus.
    speed_metric: Mapped[float | None] = mapped_column(Float)
    speed_bonus: Mapped[float] = mapped_column(Float, default=0.0)
    # [[period_id, score, consumed, quota], ...] newest first, and the weighted mean.
    history: Mapped[list[Any]] = mapped_column(JSON)
    periods_scored: Mapped[int] = mapped_column(Integer, default=0)
    period_history: Mapped[float] = mapped_column(Float, default=0.0)
    capacity: Mapped[float] = mapped_column(Float, default=0.0)
    effective: Mapped[float] = mapped_column(Float, default=0.0)
    share: Mapped[float] = mapped_column(Float, default=0.0)
    cubed_share: Mapped[float] = mapped_column(Float, default=0.0)
    task_weight: Mapped[float] = mapped_column(Float, default=0.0)


class WeightRunWeight(Base):
    """One miner's final weight in a calculation (normalised, and as sent in u16)."""

    __tablename__ = "weight_run_weights"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("weight_runs.id", ondelete="CASCADE"), primary_key=True
    )
    hotkey: Mapped[str] = mapped_column(String(HOTKEY), primary_key=True)
    uid: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    weight_u16: Mapped[int] = mapped_column(Integer)
