"""A process's live miner stats, shared with the other gateway replicas and the scoring process
through Redis by default (SPEC §3).

``start_live_stats`` builds a ``SharedStats`` over this process's ``InProcessStats`` and runs
its sync loop (every ``gateway.stats_sync_s``) until ``stack`` closes, when this process's
numbers are removed from Redis. With ``stats_sync_s = 0`` the numbers stay in this process. The
request path never waits on Redis either way. The gateway and the synthetic sender both use it,
so organic and synthetic calls count against the same announced concurrency of a miner.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from typing import Any

from core.miners.shared_stats import SharedStats
from core.miners.stats import InProcessStats, MinerStats
from core.settings import Settings
from core.shutdown import push_bounded


async def start_live_stats(settings: Settings, redis: Any, stack: AsyncExitStack) -> MinerStats:
    gateway = settings.gateway
    local = InProcessStats(
        cooldown_base_s=gateway.cooldown_base_s, cooldown_max_s=gateway.cooldown_max_s
    )
    if gateway.stats_sync_s <= 0:
        return local
    shared = SharedStats(
        redis, prefix=settings.redis.key_prefix, local=local, interval_s=gateway.stats_sync_s
    )
    task = asyncio.get_running_loop().create_task(shared.run())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await shared.leave()

    push_bounded(stack, "shared miner stats", stop)
    return shared
