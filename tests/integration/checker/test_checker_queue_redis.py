"""The check queue on a real Redis: consumer group, acknowledgement, reclaiming a dead
consumer's entries, the delivery count, dead letters, the size cap, depth."""

from __future__ import annotations

import asyncio

import pytest

from core.checks import CheckQueue, JobTimings, MissingResponse, decode_job, make_job

pytestmark = pytest.mark.redis


def job(index: int = 0, request: bytes = b"{}"):
    return make_job(
        task="sn19-tiny-chat",
        kind="chat",
        organic=False,
        request=request,
        result=None,
        hotkey=f"miner{index}",
        uid=index,
        timings=JobTimings(started=1.0, total_s=1.0),
    )


async def test_enqueue_read_ack(redis_client, redis_prefix) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    await queue.ensure_group()
    await queue.ensure_group()  # idempotent
    sent = [job(i) for i in range(3)]
    for item in sent:
        await queue.enqueue(item)
    first = await queue.read("w1", count=2, block_ms=100)
    second = await queue.read("w2", count=5, block_ms=100)
    assert [decode_job(d.data).job_id for d in first + second] == [j.job_id for j in sent]
    assert all(d.deliveries == 1 for d in first + second)
    assert await queue.read("w1", count=5, block_ms=50) == []
    depth = await queue.depth()
    assert (depth.length, depth.pending) == (3, 3)
    await queue.ack(*(d.entry_id for d in first + second))
    assert (await queue.depth()).pending == 0


async def test_jobs_enqueued_before_any_worker_are_not_lost(redis_client, redis_prefix) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    await queue.enqueue(job())
    await queue.ensure_group()
    assert len(await queue.read("w1", count=5, block_ms=100)) == 1


async def test_a_dead_consumers_entries_are_reclaimed_with_their_count(
    redis_client, redis_prefix
) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    await queue.ensure_group()
    await queue.enqueue(job())
    [taken] = await queue.read("dead", count=1, block_ms=100)
    assert await queue.reclaim("alive", min_idle_ms=60_000, count=5) == []
    await asyncio.sleep(0.15)
    [again] = await queue.reclaim("alive", min_idle_ms=100, count=5)
    assert (again.entry_id, again.data, again.deliveries) == (taken.entry_id, taken.data, 2)


async def test_touch_keeps_a_live_consumers_entry(redis_client, redis_prefix) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    await queue.ensure_group()
    await queue.enqueue(job())
    [taken] = await queue.read("live", count=1, block_ms=100)
    for _ in range(3):
        await asyncio.sleep(0.1)
        await queue.touch("live", [taken.entry_id])
    assert await queue.reclaim("other", min_idle_ms=200, count=5) == []


async def test_dead_letters(redis_client, redis_prefix) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    await queue.ensure_group()
    await queue.enqueue(job())
    [taken] = await queue.read("w", count=1, block_ms=100)
    await queue.dead_letter(taken, "it kept crashing")
    depth = await queue.depth()
    assert (depth.pending, depth.dead) == (0, 1)
    [(_, fields)] = await redis_client.xrange(queue.dead_stream)
    assert fields[b"reason"] == b"it kept crashing" and fields[b"job"] == taken.data


async def test_oversized_jobs_travel_without_payload(redis_client, redis_prefix) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix, max_job_bytes=2000)
    await queue.ensure_group()
    big = job(request=b"x" * 5000)
    await queue.enqueue(big)
    [taken] = await queue.read("w", count=1, block_ms=100)
    received = decode_job(taken.data)
    assert received.job_id == big.job_id and received.request == b""
    assert isinstance(received.response, MissingResponse)
    assert "over the check queue" in received.response.reason


async def test_the_stream_is_trimmed(redis_client, redis_prefix) -> None:
    queue = CheckQueue(redis_client, prefix=redis_prefix, maxlen=10)
    for index in range(300):
        await queue.enqueue(job(index))
    assert (await queue.depth()).length < 300
