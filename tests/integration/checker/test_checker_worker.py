"""The worker on a real Redis and database: bad jobs are scored 0 with a reason and the worker
keeps going; undecodable jobs and jobs that keep failing are dead-lettered; a redelivered job
is never stored twice."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from sqlalchemy import select

from checker.metrics import CheckerMetrics
from checker.references import ReferencePool
from checker.worker import CheckWorker
from core.checks import (
    CheckQueue,
    ImageResponse,
    JobTimings,
    TextChoice,
    TextResponse,
    make_job,
)
from core.db.engine import Database
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult
from core.settings import CheckerSettings
from protocol.catalog import resolve_catalog
from tests.support.checker_fakes import RAW_LOGPROBS, BrokenImageReference, StartableReference

pytestmark = pytest.mark.redis

CHAT, IMAGE = "sn19-tiny-chat", "sn19-tiny-diffusion"
TIMINGS = JobTimings(started=1_700_000_000.0, total_s=1.0)
CHAT_BODY = {
    "model": CHAT,
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 4,
    "temperature": 1.0,
    "seed": 1,
}


def text_job(ids=(0, 1, 0, 0), body=None, **fields):
    response = TextResponse(
        choices=[
            TextChoice(
                index=0,
                token_ids=list(ids),
                logprobs=[float(RAW_LOGPROBS[i % 6]) for i in ids],
                text="".join("abcd"[i] for i in ids if i < 4),
                finish_reason="length",
            )
        ]
    )
    return make_job(
        task=CHAT,
        kind="chat",
        organic=False,
        request=msgspec.json.encode(body or CHAT_BODY),
        result=response,
        hotkey="5Worker",
        uid=1,
        timings=TIMINGS,
        **fields,
    )


def image_job(images: list[bytes]):
    body = {"prompt": "cat", "model": IMAGE, "n": len(images), "size": "64x64", "seed": 3}
    return make_job(
        task=IMAGE,
        kind="image",
        organic=False,
        request=msgspec.json.encode(body),
        result=ImageResponse(images=images),
        hotkey="5Worker",
        uid=1,
        timings=TIMINGS,
    )


def make_worker(redis_client, redis_prefix, db, **settings) -> CheckWorker:
    fields = {"batch_size": 4, "block_ms": 50, "claim_idle_s": 0.2, "max_deliveries": 2, **settings}
    return CheckWorker(
        queue=CheckQueue(redis_client, prefix=redis_prefix),
        db=db,
        catalog=resolve_catalog("dev"),
        pool=ReferencePool(engines={CHAT: StartableReference(), IMAGE: BrokenImageReference()}),
        settings=CheckerSettings(**fields),
        consumer="worker-1",
        metrics=CheckerMetrics(),
    )


async def drain(worker: CheckWorker, rounds: int = 40) -> None:
    idle = 0
    for _ in range(rounds):
        if await worker.step(block_ms=50):
            idle = 0
            continue
        idle += 1
        depth = await worker.queue.depth()
        if idle > 3 and depth.pending == 0 and not depth.lag:
            return
        await asyncio.sleep(0.1)


async def stored(db: Database) -> dict[str, tuple[float, str, int]]:
    async with db.read() as session:
        rows = await session.execute(
            select(
                CheckJobRecord.job_id,
                CheckResult.quality,
                CheckJobRecord.reason,
                CheckJobRecord.deliveries,
            ).join(CheckResult, CheckResult.id == CheckJobRecord.result_id)
        )
        return {
            job_id: (quality, reason, deliveries) for job_id, quality, reason, deliveries in rows
        }


async def test_bad_jobs_score_zero_and_the_worker_keeps_going(
    redis_client, redis_prefix, fresh_sqlite_url
) -> None:
    db = Database.from_url(fresh_sqlite_url)
    worker = make_worker(redis_client, redis_prefix, db)
    queue = worker.queue
    await queue.ensure_group()
    good = text_job()
    missing_fields = text_job(body={"model": CHAT})
    out_of_vocab = text_job(ids=(0, 70000, 0, 0))
    huge = msgspec.structs.replace(
        text_job(), response=TextResponse(choices=[TextChoice(index=0, token_ids=[0] * 70000)])
    )
    bad_image = image_job([b"\x89PNG\r\n\x1a\n not really"])
    unknown_task = msgspec.structs.replace(text_job(), task="no-such-task")
    for job in (missing_fields, out_of_vocab, huge, bad_image, unknown_task):
        await queue.enqueue(job)
    await redis_client.xadd(queue.stream, {b"job": b"\xc1 not msgpack"})
    await queue.enqueue(good)
    await drain(worker)

    results = await stored(db)
    assert results[good.job_id][:2] == (1.0, "")
    expected = {
        missing_fields.job_id: "bad_request",
        out_of_vocab.job_id: "token_out_of_vocab",
        huge.job_id: "bad_job",
        bad_image.job_id: "image_undecodable",
    }
    for job_id, code in expected.items():
        quality, reason, _ = results[job_id]
        assert quality == 0.0 and reason.startswith(code + ":"), reason
    assert unknown_task.job_id not in results and len(results) == 5
    depth = await queue.depth()
    assert (depth.pending, depth.dead) == (0, 1)  # the undecodable entry
    await db.dispose()


async def test_jobs_that_keep_failing_are_dead_lettered_with_a_zero(
    redis_client, redis_prefix, fresh_sqlite_url
) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="PNG")
    db = Database.from_url(fresh_sqlite_url)
    worker = make_worker(redis_client, redis_prefix, db)
    await worker.queue.ensure_group()
    job = image_job([buffer.getvalue()])  # the reference engine fails on it every time
    await worker.queue.enqueue(job)
    await drain(worker)
    broken = worker.pool._injected[IMAGE]
    assert broken.calls == 2  # max_deliveries
    quality, reason, deliveries = (await stored(db))[job.job_id]
    assert quality == 0.0 and reason.startswith("dead_letter:") and deliveries == 3
    assert (await worker.queue.depth()).dead == 1
    await db.dispose()


async def test_a_redelivered_job_is_stored_once(
    redis_client, redis_prefix, fresh_sqlite_url
) -> None:
    db = Database.from_url(fresh_sqlite_url)
    worker = make_worker(redis_client, redis_prefix, db, max_deliveries=5)
    queue = worker.queue
    await queue.ensure_group()
    job = text_job()
    # The same job enqueued twice (a producer retry) and a copy stuck with a dead consumer.
    await queue.enqueue(job)
    await queue.enqueue(job)
    await queue.enqueue(job)
    await queue.read("dead-consumer", count=1, block_ms=50)
    await drain(worker)
    results = await stored(db)
    assert list(results) == [job.job_id]
    async with db.read() as session:
        count = len((await session.execute(select(CheckResult.id))).all())
    assert count == 1
    assert (await queue.depth()).pending == 0
    await db.dispose()
