"""Unsigned routes: ``GET /healthz`` (liveness, the hotkey and the tasks served) and
``GET /v1/models`` (the served tasks, OpenAI-shaped)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.types import ASGIApp

from miner_server.deps import Miner
from miner_server.render import ENCODER
from miner_server.responses import JSONBytes
from protocol.openai.models import Model, ModelList


class Health(msgspec.Struct):
    status: str
    hotkey: str
    tasks: list[str]


@get("/healthz")
async def healthz(miner: Miner) -> ASGIApp:
    return JSONBytes(ENCODER.encode(Health(status="ok", hotkey=miner.hotkey, tasks=miner.task_ids)))


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
