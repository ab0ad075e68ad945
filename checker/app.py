"""The checker's composition root: ``run(settings)`` consumes the check queue until stopped.

Owns its resources: Redis (``redis.url``, or the embedded server when empty, as the gateway
does), the database (``database.url``; the embedded SQLite file is migrated here, PostgreSQL
must be at the head revision), the reference engines (loaded on first use), and the metrics
exporter (``checker.metrics_port``). Keyword arguments replace any of them (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from checker.metrics import CheckerMetrics, serve_metrics
from checker.references import ReferencePool
from checker.worker import CheckWorker
from core.checks import CheckQueue
from core.db import Database
from core.db.migrate import ensure_schema
from core.redis import EmbeddedRedis, create_redis
from core.settings import Settings
from protocol.catalog import Catalog, resolve_catalog

log = logging.getLogger(__name__)


def consumer_name(settings: Settings) -> str:
    return settings.checker.consumer or f"{socket.gethostname()}-{os.getpid()}"


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    catalog: Catalog | None = None,
    redis: Any | None = None,
    db: Database | None = None,
    engines: Mapping[str, Any] | None = None,
    metrics: CheckerMetrics | None = None,
    consumer: str | None = None,
) -> None:
    """Consume the check queue until ``stop`` is set (forever without one)."""
    stop = stop or asyncio.Event()
    checker = settings.checker
    async with AsyncExitStack() as stack:
        the_catalog = catalog or resolve_catalog(settings.catalog)
        the_redis = redis
        if the_redis is None:
            url = settings.redis.url
            if not url:
                embedded = EmbeddedRedis(settings.data_path / "redis")
                url = await asyncio.to_thread(embedded.start)
                stack.callback(embedded.stop)
            the_redis = create_redis(url, max_connections=32)
            stack.push_async_callback(the_redis.aclose)
        the_db = db
        if the_db is None:
            await ensure_schema(settings.database_url)
            the_db = Database.from_url(settings.database_url, settings.database)
            stack.push_async_callback(the_db.dispose)
        pool = ReferencePool(
            device=checker.device,
            threads=checker.threads,
            max_loaded=checker.max_loaded_models,
            engines=engines,
        )
        stack.push_async_callback(pool.close)
        the_metrics = metrics or CheckerMetrics()
        if checker.metrics_port:
            server = await asyncio.to_thread(
                serve_metrics, the_metrics, checker.metrics_host, checker.metrics_port
            )
            stack.callback(server.shutdown)
        worker = CheckWorker(
            queue=CheckQueue.from_settings(the_redis, settings),
            db=the_db,
            catalog=the_catalog,
            pool=pool,
            settings=checker,
            consumer=consumer or consumer_name(settings),
            metrics=the_metrics,
        )
        log.info(
            "checker %s consuming %s (batch %d, concurrency %d)",
            worker.consumer,
            worker.queue.stream,
            checker.batch_size,
            checker.concurrency,
        )
        await worker.run(stop)
