"""The hold sweeper loop: any process may run it (the gateway does, on every replica; the
guarded updates make concurrent sweepers safe, each hold is released once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from billing.service import BillingService

log = logging.getLogger(__name__)


async def run_sweeper(
    service: BillingService, *, interval_s: float = 30.0, stop: asyncio.Event | None = None
) -> None:
    """Release expired holds every ``interval_s`` until ``stop`` is set (or cancelled)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            while await service.sweep_expired_holds() > 0 and not stop.is_set():
                pass
        except (SQLAlchemyError, OSError) as exc:
            log.warning("hold sweeper: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
