"""Per-request state and the steps every endpoint starts with."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from opentelemetry import trace
from opentelemetry.context import Context

from core.errors import InvalidRequest, ModelNotFound
from core.logging import request_id_var
from gateway.auth import Caller
from gateway.ids import request_id_from
from gateway.state import Gateway
from protocol.catalog import Task, TaskKind

STATE_KEY = "sn19"


class RequestContext:
    """What one request carries through the pipeline (and the error handler reads)."""

    __slots__ = (
        "caller",
        "first_token_at",
        "gateway",
        "model",
        "request_id",
        "route",
        "span",
        "started",
        "started_wall",
        "trace_context",
        "waited",
    )

    def __init__(self, gateway: Gateway, request_id: str, route: str) -> None:
        self.gateway = gateway
        self.request_id = request_id
        self.route = route
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.model = "-"
        self.caller: Caller | None = None
        self.first_token_at: float | None = None
        # Seconds spent waiting on miners or on the client (excluded from "overhead").
        self.waited = 0.0
        self.span = (
            gateway.tracer.start_span(
                "gateway.request", attributes={"http.route": route, "sn19.request_id": request_id}
            )
            if gateway.telemetry.tracing
            else trace.INVALID_SPAN
        )
        self.trace_context: Context | None = (
            trace.set_span_in_context(self.span) if self.span.is_recording() else None
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def overhead(self) -> float:
        return max(self.elapsed() - self.waited, 0.0)

    def end_span(self, status: int, error: str | None = None) -> None:
        span = self.span
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("sn19.task", self.model)
            if error is not None:
                span.set_status(trace.StatusCode.ERROR, error)
        span.end()


def request_state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state


def context_of(scope_state: dict[str, Any]) -> RequestContext | None:
    value = scope_state.get(STATE_KEY)
    return value if isinstance(value, RequestContext) else None


async def begin(request: Request[Any, Any, Any], gateway: Gateway, route: str) -> RequestContext:
    """Request id, tracing span and authentication (401 before anything else is looked at)."""
    headers = {
        key.decode("latin-1"): value.decode("latin-1") for key, value in request.scope["headers"]
    }
    request_id = request_id_from(headers.get("x-request-id"))
    ctx = RequestContext(gateway, request_id, route)
    request_state(request)[STATE_KEY] = ctx
    request_id_var.set(request_id)
    ctx.caller = await gateway.authenticator.authenticate(headers)
    return ctx


def resolve_task(ctx: RequestContext, model: str | None, kind: TaskKind, endpoint: str) -> Task:
    """The enabled task named by ``model`` (404 ``model_not_found``), of the endpoint's kind."""
    if not model:
        raise InvalidRequest("You must provide a model parameter.", param="model")
    task = ctx.gateway.catalog.get(model)
    if task is None:
        raise ModelNotFound(
            f"The model '{model[:128]}' does not exist or you do not have access to it.",
            param="model",
        )
    ctx.model = task.id
    if task.kind != kind:
        raise InvalidRequest(
            f"The model '{task.id}' is a {task.kind} model and cannot be used with {endpoint}.",
            param="model",
            code="model_not_supported",
        )
    return task
