"""Who served each request, with the proof (``GET /v1/requests/{id}``, the dashboard's request
page).

- ``request_receipts``: one row per finished request the gateway delivered from a miner: the
  task, the miner's hotkey and uid, the outcome, and the miner's receipt as a stored record
  (``core.miners.Receipt.record``: nonce, validator, miner, sha256 of the response bytes, the
  signature, and the gateway's verdict ``valid`` / ``invalid`` / ``absent``), which anyone can
  verify again offline (``sn19 receipts verify``). Written off the request path by a
  completion-hub subscriber (``gateway.provenance``). Which account a request belongs to is in
  billing's ``usage_records`` (same ``request_id``; clients may choose their request ids, so
  the miner and the task must match too, and the nearest in time wins); the check, if the
  request was sampled, in ``check_jobs``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigId, utcnow


class RequestReceipt(Base):
    __tablename__ = "request_receipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    task: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    miner_hotkey: Mapped[str] = mapped_column(String(64))
    miner_uid: Mapped[int] = mapped_column(Integer, default=-1)
    outcome: Mapped[str] = mapped_column(String(32))
    # valid | invalid | absent (no receipt from the miner: the answer is not provably its).
    receipt_status: Mapped[str] = mapped_column(String(16))
    receipt: Mapped[str | None] = mapped_column(Text)
    ttft_s: Mapped[float | None] = mapped_column(Float)
    total_s: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


__all__ = ["RequestReceipt"]
