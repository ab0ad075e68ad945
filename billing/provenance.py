"""Who served a customer's request, with the proof: the usage record (account, key, model,
what it cost, the miner's hotkey) joined with the miner's receipt the gateway stored
(``request_receipts``: the receipt record anyone can verify offline, and the gateway's verdict).

Clients may choose their request ids (``x-request-id``), so a receipt belongs to a usage
record when the request id, the model and the miner agree, the nearest in time winning; and a
customer only ever sees their own account's records (another account's id is "not found").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import select

from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import ApiKey, UsageRecord
from core.db.tables.requests import RequestReceipt


@dataclass(frozen=True)
class ServedRequest:
    """What a request's owner may know about it."""

    request_id: str
    account_id: int
    key_id: int
    key_name: str
    task: str
    kind: str
    status: str
    input_tokens: int
    output_tokens: int
    images: int
    steps: int
    cost: int
    latency_ms: int | None
    created_at: datetime
    miner_hotkey: str | None
    # None until the gateway stored it (off the request path, within moments), or when no
    # miner delivered an answer.
    miner_uid: int | None = None
    receipt: str | None = None  # the stored record (JSON), re-verifiable offline
    receipt_status: str = "none"  # valid | invalid | absent | none (nothing stored)


class ReceiptLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        request_id: str,
        task: str,
        kind: str,
        miner_hotkey: str,
        miner_uid: int,
        outcome: str,
        receipt: str | None,
        receipt_status: str,
        ttft_s: float | None,
        total_s: float,
        attempts: int,
    ) -> None:
        """Keep a finished request's miner and receipt (the gateway's hub subscriber)."""
        async with self._db.transaction() as session:
            session.add(
                RequestReceipt(
                    request_id=request_id[:128],
                    task=task[:128],
                    kind=kind[:16],
                    miner_hotkey=miner_hotkey[:64],
                    miner_uid=miner_uid,
                    outcome=outcome[:32],
                    receipt_status=receipt_status[:16],
                    receipt=receipt,
                    ttft_s=ttft_s,
                    total_s=total_s,
                    attempts=attempts,
                    created_at=utcnow(),
                )
            )

    async def served(self, account_id: int, request_id: str) -> ServedRequest | None:
        """The account's request (None: unknown, or another account's)."""
        if not request_id or len(request_id) > 128:
            return None
        async with self._db.read() as session:
            found = (
                await session.execute(
                    select(UsageRecord, ApiKey.name)
                    .join(ApiKey, ApiKey.id == UsageRecord.key_id)
                    .where(
                        UsageRecord.account_id == account_id,
                        UsageRecord.request_id == request_id,
                    )
                    .order_by(UsageRecord.id.desc())
                    .limit(1)
                )
            ).first()
            if found is None:
                return None
            usage, key_name = found
            receipts = (
                await session.scalars(
                    select(RequestReceipt).where(
                        RequestReceipt.request_id == request_id,
                        RequestReceipt.task == usage.task,
                        RequestReceipt.miner_hotkey == (usage.miner_hotkey or ""),
                    )
                )
            ).all()
        receipt = min(
            receipts,
            key=lambda r: abs((r.created_at - usage.created_at).total_seconds()),
            default=None,
        )
        return ServedRequest(
            request_id=usage.request_id,
            account_id=usage.account_id,
            key_id=usage.key_id,
            key_name=str(key_name),
            task=usage.task,
            kind=usage.kind,
            status=usage.status,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            images=usage.images,
            steps=usage.steps,
            cost=usage.cost,
            latency_ms=usage.latency_ms,
            created_at=usage.created_at,
            miner_hotkey=usage.miner_hotkey,
            miner_uid=receipt.miner_uid if receipt is not None else None,
            receipt=receipt.receipt if receipt is not None else None,
            receipt_status=receipt.receipt_status if receipt is not None else "none",
        )


def receipt_fields(record: str | None) -> dict[str, object] | None:
    """A stored receipt record as JSON fields (None when there is none or it is unreadable)."""
    if not record:
        return None
    try:
        fields = msgspec.json.decode(record)
    except msgspec.DecodeError:
        return None
    if not isinstance(fields, dict):
        return None
    # The stored form leaves out its default version tag; the API always names it.
    return {"v": "sn19-receipt/1", **fields}
