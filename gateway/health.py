"""`GET /healthz` (liveness, and whether Redis answers) and `GET /metrics` (Prometheus);
both unauthenticated."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import get
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from core.telemetry import METRICS_CONTENT_TYPE
from gateway.events import ENCODER
from gateway.http import json_response
from gateway.state import Gateway


class Health(msgspec.Struct):
    status: str
    redis: bool


async def redis_answers(redis: object, timeout: float = 0.5) -> bool:
    ping = getattr(redis, "ping", None)
    if ping is None:
        return False
    try:
        async with asyncio.timeout(timeout):
            return bool(await ping())
    except Exception:  # noqa: BLE001 - any failure means "does not answer"
        return False


@get("/healthz")
async def healthz(gateway: Gateway) -> ASGIApp:
    redis_ok = await redis_answers(gateway.redis)
    return json_response(ENCODER.encode(Health("ok", redis_ok)))


@get("/metrics")
async def metrics(gateway: Gateway) -> ASGIApp:
    return ASGIResponse(
        body=gateway.telemetry.render_metrics(), media_type=METRICS_CONTENT_TYPE, status_code=200
    )
