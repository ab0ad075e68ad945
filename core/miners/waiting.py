"""Organic requests first: a flag in Redis per task while customers' requests wait for a miner.

A gateway replica whose requests for a task are waiting for a free miner slot (the gateway's
slot queue) keeps ``{prefix}queue:{task}`` set, with a short expiry refreshed while they wait,
and deletes it when its queue empties; a replica that dies leaves it to expire. The synthetic
sender holds its traffic for a task while the flag is up, so the validator's own test requests
never take a slot a customer is waiting for.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# How long a raised flag lives without a refresh.
FLAG_TTL_MS = 3000


class OrganicWaiting:
    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, task: str) -> str:
        return f"{self._prefix}queue:{task}"

    async def raise_flag(self, task: str) -> None:
        try:
            await self._redis.set(self._key(task), b"1", px=FLAG_TTL_MS)
        except (RedisError, OSError) as exc:
            log.warning("could not flag waiting requests for %s: %s", task, exc)

    async def lower_flag(self, task: str) -> None:
        try:
            await self._redis.delete(self._key(task))
        except (RedisError, OSError) as exc:
            log.warning("could not clear the waiting flag of %s: %s", task, exc)

    async def waiting(self, task: str) -> bool:
        """Whether customers' requests for ``task`` wait on some replica (False when Redis
        cannot tell: synthetic traffic must not stop because Redis is down)."""
        try:
            return bool(await self._redis.exists(self._key(task)))
        except (RedisError, OSError):
            return False
