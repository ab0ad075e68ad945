"""A shutdown step that hangs is abandoned after its timeout and the other steps still run."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

import pytest

from core.shutdown import push_bounded


async def test_a_hanging_step_is_abandoned_and_the_rest_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def quick() -> None:
        ran.append("quick")

    with caplog.at_level(logging.WARNING, logger="core.shutdown"):
        async with AsyncExitStack() as stack:
            push_bounded(stack, "quick step", quick)
            push_bounded(stack, "stuck step", hangs, timeout_s=0.05)
    assert ran == ["quick"]
    assert "stuck step did not finish" in caplog.text
