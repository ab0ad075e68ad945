"""Keeping who served each request, with the proof (``GET /v1/requests/{id}``): a completion-hub
subscriber that stores every finished request's task, miner and receipt (verified once, the
verdict shared with the receipt auditor and the check sampler: ``gateway.receipts``) through
billing's ``ReceiptLog``, from the hub's background task, after the response went out. A
database failure loses the record (counted and logged), never the request.
"""

from __future__ import annotations

import logging

from billing import ReceiptLog, receipt_fields
from core.miners import Receipt
from gateway.hooks import CompletedRequest, CompletionHub
from gateway.receipts import check_receipt

log = logging.getLogger(__name__)


class ProvenanceRecorder:
    def __init__(self, receipts: ReceiptLog) -> None:
        self.receipts = receipts
        self.stored = 0
        self.dropped = 0

    async def __call__(self, item: CompletedRequest) -> None:
        receipt = item.receipt
        record: str | None
        if isinstance(receipt, Receipt):
            status = await check_receipt(receipt)
            record = receipt.record()
        elif isinstance(receipt, str):
            record, status = receipt, _status_of(receipt)
        else:
            record, status = None, "absent"
        try:
            await self.receipts.record(
                request_id=item.request_id,
                task=item.task_id,
                kind=item.kind,
                miner_hotkey=item.miner.hotkey,
                miner_uid=item.miner.uid,
                outcome=item.outcome,
                receipt=record,
                receipt_status=status,
                ttft_s=item.timings.ttft_s,
                total_s=item.timings.total_s,
                attempts=item.timings.attempts,
            )
        except Exception:  # the database is away: lose the record, not the request
            self.dropped += 1
            log.warning("provenance of %s not stored", item.request_id, exc_info=True)
            return
        self.stored += 1


def _status_of(record: str) -> str:
    fields = receipt_fields(record) or {}
    status = fields.get("status")
    return status if isinstance(status, str) else "absent"


def install_provenance(hub: CompletionHub, receipts: ReceiptLog) -> ProvenanceRecorder:
    recorder = ProvenanceRecorder(receipts)
    hub.subscribe(recorder)
    return recorder
