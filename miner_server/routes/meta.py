"""Unsigned routes: ``GET /healthz`` (liveness, the hotkey, the tasks served and those whose
engine cannot serve now: ``protocol.miner.MinerHealth``) and ``GET /v1/models`` (the served
tasks, OpenAI-shaped)."""

from __future__ import annotations

from litestar import get
from litestar.types import ASGIApp

from miner_server.deps import Miner
from miner_server.render import ENCODER
from miner_server.responses import JSONBytes
from protocol.miner import MinerHealth
from protocol.openai.models import Model, ModelList


@get("/healthz")
async def healthz(miner: Miner) -> ASGIApp:
    degraded = await miner.degraded_tasks()
    health = MinerHealth(
        status="degraded" if degraded else "ok",
        hotkey=miner.hotkey,
        tasks=miner.task_ids,
        degraded=degraded,
    )
    return JSONBytes(ENCODER.encode(health))


@get("/v1/models")
async def models(miner: Miner) -> ASGIApp:
    listing = ModelList(
        data=[
            Model(
                id=task.id,
                created=task.created,
                owned_by=task.owned_by,
                kind=task.kind,
                context_length=task.text.context_length if task.text else None,
            )
            for task in miner.tasks()
        ]
    )
    return JSONBytes(ENCODER.encode(listing))
