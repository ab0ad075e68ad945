"""The validator's error hierarchy; one renderer at the HTTP edge turns these into the OpenAI
error envelope (``{"error": {"message", "type", "param", "code"}}``).

    AppError (500 api_error internal_error)
    ├── InvalidRequest (400 invalid_request_error)      bad field: `param` names it
    │   │                                               (code invalid_value, else invalid_request)
    │   ├── UnsupportedParameter (400)                  a field no miner can honour
    │   └── RequestRefused (400 request_refused)        the model server refused it as invalid
    ├── AuthenticationFailed (401 invalid_api_key)
    ├── PermissionDenied (403 permission_denied)
    ├── NotFound (404)                                  e.g. model_not_found
    ├── PayloadTooLarge (413)
    ├── InsufficientQuota (402 insufficient_quota)      x-should-retry: false
    ├── RateLimited (429 rate_limit_exceeded)           Retry-After
    ├── UpstreamError (502 upstream_error)              miner answered garbage, no retry left
    ├── NoCapacity (503 no_capacity)                    Retry-After
    └── UpstreamTimeout (504 upstream_timeout)

Domain packages raise these (or subclasses); they never import the web framework. Every error
has a ``code``: the one given, else its class's ``default_code``.
"""

from __future__ import annotations


class AppError(Exception):
    status_code: int = 500
    openai_type: str = "api_error"
    default_code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code: str = code or self.code_for(param)
        self.headers = headers or {}

    def code_for(self, param: str | None) -> str:
        """The code when none is given."""
        return self.default_code


class InvalidRequest(AppError):
    status_code = 400
    openai_type = "invalid_request_error"
    default_code = "invalid_request"

    def code_for(self, param: str | None) -> str:
        # A refused field (``param``) of a plain InvalidRequest is an invalid value.
        if param is not None and self.default_code == InvalidRequest.default_code:
            return "invalid_value"
        return self.default_code


class UnsupportedParameter(InvalidRequest):
    default_code = "unsupported_parameter"


class RequestRefused(InvalidRequest):
    """A miner's model server refused the request as invalid (its 400): the request's fault,
    so it is not retried on another miner."""

    default_code = "request_refused"


class AuthenticationFailed(AppError):
    status_code = 401
    openai_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(AppError):
    status_code = 403
    openai_type = "permission_denied"
    default_code = "permission_denied"


class NotFound(AppError):
    status_code = 404
    openai_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class PayloadTooLarge(AppError):
    status_code = 413
    openai_type = "invalid_request_error"
    default_code = "request_too_large"


class InsufficientQuota(AppError):
    status_code = 402
    openai_type = "insufficient_quota"
    default_code = "insufficient_quota"


class RateLimited(AppError):
    status_code = 429
    openai_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(AppError):
    status_code = 502
    openai_type = "server_error"
    default_code = "upstream_error"


class NoCapacity(AppError):
    status_code = 503
    openai_type = "server_error"
    default_code = "no_capacity"


class UpstreamTimeout(AppError):
    status_code = 504
    openai_type = "server_error"
    default_code = "upstream_timeout"
