"""Crash safety against a real Redis: two `sn19 checker` processes share the queue; one is
killed (SIGKILL) while it holds a job; the other takes the job over and finishes it. Every job
gets exactly one result, none is lost, none is scored twice."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
import pytest
from PIL import Image
from sqlalchemy import func, select

from core.checks import CheckQueue, ImageResponse, JobTimings, make_job
from core.db.engine import Database
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult
from core.redis import create_redis
from tests.support.redis_fixtures import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.slow]

IMAGE = "sn19-tiny-diffusion"
ROOT = Path(__file__).resolve().parents[3]
JOBS = 4


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (shade, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def slow_job(index: int):
    """An image job whose check regenerates 2 images of 20 steps (seconds on a CPU)."""
    body = {
        "prompt": f"a cat {index}",
        "model": IMAGE,
        "n": 2,
        "size": "64x64",
        "seed": index,
        "steps": 20,
    }
    return make_job(
        task=IMAGE,
        kind="image",
        organic=True,
        request=msgspec.json.encode(body),
        result=ImageResponse(images=[png(index), png(index + 1)]),
        hotkey=f"5Crash{index}",
        uid=index,
        timings=JobTimings(started=time.time(), total_s=3.0),
    )


def start_worker(config: Path, name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "sn19", "checker", "--config", str(config), "--consumer", name],
        cwd=str(ROOT),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def holding(redis, queue: CheckQueue, consumer: str) -> int:
    rows = await redis.xpending_range(
        queue.stream, queue.group, min="-", max="+", count=100, consumername=consumer
    )
    return len(rows)


async def test_a_killed_workers_job_is_finished_by_another(
    tmp_path: Path, fresh_sqlite_url: str
) -> None:
    prefix = f"sn19test:{uuid.uuid4().hex[:10]}:"
    config = tmp_path / "checker.toml"
    config.write_text(
        f'catalog = "dev"\ndata_dir = "{tmp_path}"\n'
        f'[database]\nurl = "{fresh_sqlite_url}"\n'
        f'[redis]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        "[checker]\nbatch_size = 1\nblock_ms = 200\nclaim_idle_s = 3.0\nthreads = 1\n"
        "max_deliveries = 5\n",
        "utf-8",
    )
    redis = create_redis(REDIS_URL)
    queue = CheckQueue(redis, prefix=prefix)
    await queue.ensure_group()
    jobs = [slow_job(i) for i in range(JOBS)]
    for job in jobs:
        await queue.enqueue(job)
    victim = start_worker(config, "victim", tmp_path / "victim.log")
    survivor = None
    db = Database.from_url(fresh_sqlite_url)
    try:
        deadline = time.monotonic() + 180
        while await holding(redis, queue, "victim") == 0:  # it loads the model, then takes one
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()
            assert time.monotonic() < deadline, "the worker never took a job"
            await asyncio.sleep(0.1)
        survivor = start_worker(config, "survivor", tmp_path / "survivor.log")
        await asyncio.sleep(0.5)  # the victim is mid-check: regenerating takes seconds
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        deadline = time.monotonic() + 300
        while True:
            async with db.read() as session:
                done = await session.scalar(select(func.count()).select_from(CheckJobRecord))
            depth = await queue.depth()
            if done == JOBS and depth.pending == 0:
                break
            assert survivor.poll() is None, (tmp_path / "survivor.log").read_text()
            assert time.monotonic() < deadline, f"{done} of {JOBS} jobs stored"
            await asyncio.sleep(0.5)
        async with db.read() as session:
            rows = (
                await session.execute(
                    select(
                        CheckJobRecord.job_id, CheckJobRecord.deliveries, CheckJobRecord.checked_by
                    )
                )
            ).all()
            results = await session.scalar(select(func.count()).select_from(CheckResult))
        assert sorted(job_id for job_id, _, _ in rows) == sorted(job.job_id for job in jobs)
        assert results == JOBS  # no job scored twice
        taken_over = [row for row in rows if row.deliveries > 1]
        assert taken_over and all(row.checked_by == "survivor" for row in taken_over)
        assert {row.checked_by for row in rows} <= {"survivor", "victim"}
    finally:
        for process in (victim, survivor):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=100)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await db.dispose()
