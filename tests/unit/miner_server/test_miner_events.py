"""EventBatches: coalescing what is available, errors after the events before them, abort."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inference.base import ChoiceEnd, EngineError, TextEvent, TokenEvent
from miner_server.events import MAX_BATCH, ClientGone, EventBatches


def tok(i: int) -> TokenEvent:
    return TokenEvent(choice=0, token_id=i, token="t", text="t", logprob=-1.0)


async def source(
    items: list, *, gap: float = 0.0, state: dict | None = None
) -> AsyncIterator[TextEvent]:
    try:
        for item in items:
            if isinstance(item, Exception):
                raise item
            if gap:
                await asyncio.sleep(gap)
            yield item
    finally:
        if state is not None:
            state["closed"] = True


async def test_events_already_available_come_in_one_batch() -> None:
    batches = EventBatches(source([tok(0), tok(1), tok(2), ChoiceEnd(0, "stop")]))
    first = await batches.next()
    assert len(first) == 4 and batches.finished
    assert await batches.next() == []


async def test_slow_events_are_not_held_back() -> None:
    batches = EventBatches(source([tok(0), tok(1), ChoiceEnd(0, "stop")], gap=0.01))
    sizes = []
    while batch := await batches.next():
        sizes.append(len(batch))
    assert sizes == [1, 1, 1]


async def test_batches_are_bounded() -> None:
    batches = EventBatches(source([tok(i) for i in range(MAX_BATCH + 10)]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(await batches.next()) == MAX_BATCH
    assert len(await batches.next()) == 10


async def test_error_comes_after_the_events_before_it() -> None:
    batches = EventBatches(source([tok(0), tok(1), EngineError("boom")]))
    assert len(await batches.next()) == 2
    with pytest.raises(EngineError, match="boom"):
        await batches.next()
    assert await batches.next() == []


async def test_abort_stops_the_engine_and_wakes_the_consumer() -> None:
    state: dict = {}
    batches = EventBatches(source([tok(i) for i in range(1000)], gap=0.01, state=state))
    assert await batches.next()
    waiting = asyncio.ensure_future(batches.next())
    await asyncio.sleep(0)
    batches.abort()
    with pytest.raises(ClientGone):
        await waiting
    await asyncio.sleep(0.01)
    assert state["closed"]


async def test_close_stops_the_engine() -> None:
    state: dict = {}
    batches = EventBatches(source([tok(i) for i in range(1000)], gap=0.01, state=state))
    await batches.next()
    batches.close()
    await asyncio.sleep(0.01)
    assert state["closed"]
