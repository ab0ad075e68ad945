"""Verifying miners' receipts (SPEC §2) for every delivered answer, off the request path.

Dispatch collects each successful answer's ``core.miners.Receipt`` (the request's btauth/1 nonce,
the digest of the bytes received, the miner's signature, if any); the request publishes it on the
completion hub with the finished request. ``ReceiptAuditor`` is a hub subscriber: from the hub's
background task, after the response went out, it verifies the receipt (sr25519, ~60 µs; a JSON
body over 64 KiB is hashed in a worker thread) and counts the verdict in
``sn19_gateway_miner_receipts_total{model, status}`` (``valid``, ``invalid``, ``absent``). The
verdict stays on the receipt, so the organic sampler (``gateway.checks``) stores it with the check
job without verifying twice.

A missing or invalid receipt never fails the customer's request: the answer was already
delivered (streamed, usually) before the receipt could be checked, and holding every response
until it is verified would add the miner's signing and our verification to every request's
latency. It is evidence against the miner instead: counted here, logged, and kept with the
check job (``status`` in the stored record), where the checker and operators can see it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from core.miners import Receipt
from gateway.hooks import CompletedRequest, CompletionHub

log = logging.getLogger(__name__)

# JSON bodies larger than this are hashed in a worker thread (images: megabytes).
_THREAD_ABOVE = 64 * 1024


async def check_receipt(receipt: Receipt) -> str:
    """Verify (once) and return the verdict, hashing a large body off the event loop."""
    if receipt.status != "unchecked":
        return receipt.status
    body = receipt.body
    if body is not None and len(body) > _THREAD_ABOVE:
        return await asyncio.to_thread(receipt.check)
    return receipt.check()


class ReceiptAuditor:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.counts: dict[str, int] = {"valid": 0, "invalid": 0, "absent": 0}
        self._children: dict[tuple[str, str], Any] = {}
        self._metric = Counter(
            "sn19_gateway_miner_receipts",
            "Receipts of delivered miner answers by model and verdict (valid, invalid, absent).",
            ["model", "status"],
            registry=registry,
        )

    async def __call__(self, item: CompletedRequest) -> None:
        receipt = item.receipt
        if item.outcome != "ok" or not isinstance(receipt, Receipt):
            return
        status = await check_receipt(receipt)
        self.counts[status] = self.counts.get(status, 0) + 1
        labels = (item.task_id, status)
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        child.inc()
        if status == "invalid":
            log.warning(
                "invalid receipt from miner %s (uid %d) for request %s",
                item.miner.hotkey,
                item.miner.uid,
                item.request_id,
            )


def install_receipt_auditor(hub: CompletionHub, registry: CollectorRegistry) -> ReceiptAuditor:
    """Subscribe the auditor (whichever subscriber verifies first, the other reuses the verdict)."""
    auditor = ReceiptAuditor(registry)
    hub.subscribe(auditor)
    return auditor
