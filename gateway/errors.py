"""One renderer for every error: the OpenAI envelope ``{"error": {message, type, param, code}}``.

Registered as the app's exception handler for everything: ``AppError`` (ours, with its status,
type, code, param and headers), Litestar's own HTTP errors (unknown route 404, 405, 413 body too
large, form parsing 400) and any other exception (500, logged with the request id, no details
to the client). Client errors carry ``x-should-retry: false`` so SDKs do not retry them.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from core.errors import AppError, InvalidRequest, NotFound, PayloadTooLarge
from gateway.context import RequestContext
from gateway.http import JSONResponse, json_response
from protocol.openai.common import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()
_NO_RETRY = frozenset({400, 401, 402, 403, 404, 405, 413, 422})


class MethodNotAllowed(AppError):
    status_code = 405
    openai_type = "invalid_request_error"
    default_code = "method_not_allowed"


def envelope(error: AppError) -> bytes:
    return _ENCODER.encode(
        ErrorResponse(
            error=ErrorDetail(
                message=error.message, type=error.openai_type, param=error.param, code=error.code
            )
        )
    )


def error_headers(error: AppError) -> dict[str, str]:
    headers = dict(error.headers)
    if error.status_code in _NO_RETRY:
        headers["x-should-retry"] = "false"
    return headers


def as_app_error(request: Request[Any, Any, Any], exc: Exception) -> AppError:
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, NotFoundException):
        return NotFound(f"Invalid URL ({request.method} {request.url.path})", code="unknown_url")
    if isinstance(exc, MethodNotAllowedException):
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.url.path}", headers=headers
        )
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return PayloadTooLarge("The request body is too large.")
    if isinstance(exc, ValidationException):
        return InvalidRequest(f"Invalid request: {exc.detail}")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        error = InvalidRequest(str(exc.detail))
        error.status_code = exc.status_code
        return error
    log.exception("unhandled error serving %s %s", request.method, request.url.path, exc_info=exc)
    return AppError("The server had an error while processing your request.")


def account_error(ctx: RequestContext | None, error: AppError) -> None:
    """The request line (metrics) and the span of a request that ended with ``error``."""
    if ctx is None:
        return
    ctx.gateway.metrics.request(ctx.route, ctx.model, error.status_code, ctx.elapsed())
    ctx.end_span(error.status_code, error.code or error.openai_type)


def error_response(ctx: RequestContext | None, error: AppError) -> JSONResponse:
    """Account for ``error`` and render it (for errors raised outside Litestar's handlers)."""
    account_error(ctx, error)
    return json_response(envelope(error), status=error.status_code, headers=error_headers(error))


def render_error(error: AppError) -> Response[bytes]:
    return Response(
        content=envelope(error),
        status_code=error.status_code,
        media_type="application/json",
        headers=error_headers(error),
    )
