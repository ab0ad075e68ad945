"""Checks per second of `sn19 checker` workers on this machine, with the dev catalog's models.

Prepares honest miner answers with the reference engines (text: chat answers of about 64
tokens at temperature 1; image: 64x64, 10 steps, one image), then for each configuration
starts the workers (``sn19 checker`` processes in one consumer group on the machine's Redis, a
migrated SQLite database), lets them load their models on a warm-up job, enqueues ``--jobs``
jobs at once and times until every result is stored. Configurations: one worker with torch on
2 threads, and two workers with 1 thread each (the machine has 2 cores).

    .venv/bin/python benchmarks/checker_throughput.py [--kind text|image|both] [--jobs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from core.checks import (  # noqa: E402
    CheckJob,
    CheckQueue,
    ImageResponse,
    JobTimings,
    TextChoice,
    TextResponse,
    make_job,
)
from core.db.engine import Database  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.tables.checks import CheckJobRecord  # noqa: E402
from core.redis import create_redis  # noqa: E402
from inference.base import ChoiceEnd, ImageRequest, TokenEvent  # noqa: E402

CHAT, IMAGE = "sn19-tiny-chat", "sn19-tiny-diffusion"
PROMPTS = (
    "Tell me about cats.",
    "Write a poem about the sea.",
    "Why is the sky blue?",
    "Give me a recipe for pancakes.",
    "How do airplanes fly?",
    "Describe a sunset.",
)


async def text_answers(count: int) -> list[CheckJob]:
    """Honest chat answers of 48-64 tokens (max_tokens 64; shorter answers are skipped)."""
    from inference.requests import chat_text_request
    from inference.transformers_text import TransformersTextEngine
    from protocol.catalog import resolve_catalog
    from protocol.miner import MinerChatRequest

    task = resolve_catalog("dev").get(CHAT)
    assert task is not None and task.text is not None
    engine = TransformersTextEngine("builtin:tiny-llama")
    await engine.start()
    jobs: list[CheckJob] = []
    seed = 0
    while len(jobs) < count:
        seed += 1
        body = {
            "model": CHAT,
            "messages": [{"role": "user", "content": PROMPTS[seed % 6]}],
            "max_tokens": 64,
            "temperature": 1.0,
            "seed": seed,
        }
        request = msgspec.convert(body, MinerChatRequest)
        engine_request = chat_text_request(request, task.text, lambda r: 0)
        ids: list[int] = []
        logprobs: list[float] = []
        text, finish = "", "length"
        async for event in engine.generate(engine_request):
            if isinstance(event, TokenEvent):
                ids.append(event.token_id)
                logprobs.append(event.logprob)
                text += event.text
            elif isinstance(event, ChoiceEnd):
                text += event.text
                finish = event.finish_reason
        if len(ids) < 48:
            continue  # keep the jobs near 64 tokens
        response = TextResponse(
            choices=[
                TextChoice(
                    index=0, token_ids=ids, logprobs=logprobs, text=text, finish_reason=finish
                )
            ]
        )
        jobs.append(
            make_job(
                task=CHAT,
                kind="chat",
                organic=True,
                request=request,
                result=response,
                hotkey="5Bench",
                uid=1,
                timings=JobTimings(started=time.time(), total_s=1.0),
            )
        )
    await engine.close()
    return jobs


async def image_answers(count: int) -> list[CheckJob]:
    from inference.diffusers_image import DiffusersImageEngine

    engine = DiffusersImageEngine("builtin:tiny-sd")
    await engine.start()
    distinct = []
    for seed in range(min(count, 8)):
        prompt = PROMPTS[seed % 6]
        [image] = await engine.generate(
            ImageRequest(prompt=prompt, width=64, height=64, steps=10, seed=seed)
        )
        body = {
            "prompt": prompt,
            "model": IMAGE,
            "n": 1,
            "size": "64x64",
            "seed": seed,
            "steps": 10,
        }
        distinct.append((body, image))
    await engine.close()
    return [
        make_job(
            task=IMAGE,
            kind="image",
            organic=True,
            request=msgspec.json.encode(body),
            result=ImageResponse(images=[image], output_format="png"),
            hotkey="5Bench",
            uid=1,
            timings=JobTimings(started=time.time(), total_s=1.0),
        )
        for body, image in (distinct[i % len(distinct)] for i in range(count))
    ]


@contextlib.contextmanager
def workers(config: Path, count: int, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sn19",
                "checker",
                "--config",
                str(config),
                "--consumer",
                f"bench-{index}",
            ],
            cwd=str(ROOT),
            stdout=(logs / f"worker-{index}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for index in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def stored(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(CheckJobRecord)) or 0)


async def measure(
    jobs: list[CheckJob], count: int, threads: int, redis_url: str, tmp: Path
) -> float:
    prefix = f"sn19bench:{uuid.uuid4().hex[:8]}:"
    url = f"sqlite+aiosqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    await asyncio.to_thread(upgrade, url)
    config = tmp / f"checker-{count}.toml"
    config.write_text(
        f'catalog = "dev"\ndata_dir = "{tmp}"\n[database]\nurl = "{url}"\n'
        f'[redis]\nurl = "{redis_url}"\nkey_prefix = "{prefix}"\n'
        f"[checker]\nbatch_size = 16\nblock_ms = 100\nthreads = {threads}\n",
        "utf-8",
    )
    redis = create_redis(redis_url)
    queue = CheckQueue(redis, prefix=prefix)
    await queue.ensure_group()
    db = Database.from_url(url)
    try:
        with workers(config, count, tmp):
            for _ in range(count):  # warm-up: every worker loads its model
                await queue.enqueue(msgspec.structs.replace(jobs[0], job_id=uuid.uuid4().hex))
            while await stored(db) < count:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            base = await stored(db)
            started = time.perf_counter()
            for job in jobs:
                await queue.enqueue(msgspec.structs.replace(job, job_id=uuid.uuid4().hex))
            while await stored(db) < base + len(jobs):
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await db.dispose()
    return len(jobs) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["text", "image", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=0, help="default: 300 text, 60 image")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    kinds = ["text", "image"] if args.kind == "both" else [args.kind]
    with tempfile.TemporaryDirectory(prefix="checker-bench-") as directory:
        tmp = Path(directory)
        for kind in kinds:
            count = args.jobs or (300 if kind == "text" else 60)
            jobs = await (text_answers(count) if kind == "text" else image_answers(count))
            tokens = (
                sum(len(j.response.choices[0].token_ids) for j in jobs) / len(jobs)
                if kind == "text"
                else 0
            )
            for workers_count, threads in ((1, 2), (2, 1)):
                rate = await measure(jobs, workers_count, threads, args.redis_url, tmp)
                detail = f"{tokens:.0f} tokens/job" if kind == "text" else "64x64, 10 steps"
                print(
                    f"{kind:5s} ({detail}): {workers_count} worker(s) x {threads} thread(s): "
                    f"{rate:.2f} checks/s over {len(jobs)} jobs",
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())
