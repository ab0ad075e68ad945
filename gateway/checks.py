"""Organic sampling to the checker (SPEC §5): a completion-hub subscriber that sends a sample of
finished requests to the check queue.

The hub delivers finished requests from its own background task, after the response went out,
so nothing here is on the request path. A request is sampled with probability
``checker.organic_sample_rate``; only complete answers (outcome ``ok``) are checked (a client
that went away, or a miner failure the gateway already counted, says nothing about quality).
The job is built with ``core.checks.make_job`` (the synthetic sender uses the same call) and
enqueued; a Redis failure drops the sample and counts it, it never reaches the client. The job
carries the miner's receipt as a verified record (``core.miners.Receipt.record``: nonce, digest,
signature and the verdict ``valid`` / ``invalid`` / ``absent``; see ``gateway.receipts``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from core.checks import KINDS, CheckQueue, JobTimings, make_job
from core.miners import Receipt
from core.settings import Settings
from gateway.hooks import CompletedRequest, CompletionHub
from gateway.receipts import check_receipt

log = logging.getLogger(__name__)
T = TypeVar("T")


class CheckSampler:
    def __init__(self, queue: CheckQueue, *, rate: float, rng: random.Random | None = None) -> None:
        self.queue = queue
        self.rate = rate
        self.rng = rng or random.Random()
        self.enqueued = 0
        self.skipped = 0
        self.dropped = 0

    def sampled(self) -> bool:
        return self.rate >= 1.0 or self.rng.random() < self.rate

    async def __call__(self, item: CompletedRequest) -> None:
        if item.outcome != "ok" or item.kind not in KINDS or not self.sampled():
            self.skipped += 1
            return
        receipt = item.receipt
        if isinstance(receipt, Receipt):
            await check_receipt(receipt)
            receipt = receipt.record()
        # Images are base64-decoded while building the job: that goes off the event loop; a
        # text or embedding job is cheaper to build here than a thread hand-off.
        build = asyncio.to_thread if item.kind == "image" else _here
        job = await build(
            make_job,
            task=item.task_id,
            kind=item.kind,  # checked against KINDS above
            organic=True,
            request=item.miner_request,
            result=item.result,
            hotkey=item.miner.hotkey,
            uid=item.miner.uid,
            timings=JobTimings(
                started=item.timings.started,
                total_s=item.timings.total_s,
                ttft_s=item.timings.ttft_s,
                attempts=item.timings.attempts,
            ),
            receipt=receipt,
            request_id=item.request_id,
        )
        try:
            await self.queue.enqueue(job)
        except Exception:  # the check queue is down: lose the sample, not the request
            self.dropped += 1
            log.warning("check job for %s not enqueued", item.request_id, exc_info=True)
            return
        self.enqueued += 1


async def _here(fn: Callable[..., T], /, **kwargs: Any) -> T:
    return fn(**kwargs)


def install_check_sampler(
    hub: CompletionHub, queue: CheckQueue, settings: Settings
) -> CheckSampler | None:
    """Subscribe the organic sampler to the gateway's completion hub (nothing is subscribed at
    a sample rate of 0, so the hub stays inactive and costs nothing per request)."""
    rate = settings.checker.organic_sample_rate
    if rate <= 0.0:
        return None
    sampler = CheckSampler(queue, rate=rate)
    hub.subscribe(sampler)
    return sampler
