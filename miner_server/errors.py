"""The miner's errors, each an OpenAI error envelope with its HTTP status.

Serving code raises; one exception handler (``miner_server.responses``) renders every error as
``{"error": {"message", "type", "param", "code"}}``. After the first byte of a stream an error
becomes a final ``data: {"error": ...}`` event instead (no ``[DONE]``).

::

    MinerError                       500 server_error
    ├── InvalidRequest               400 invalid_request_error (param names the field)
    ├── AuthFailed                   401 invalid_signature | stale_nonce | replayed_nonce |
    │                                    wrong_receiver | missing_signature
    ├── ValidatorRefused             403 validator_not_registered | insufficient_stake
    ├── ModelNotFound                404 model_not_found
    ├── BodyTooLarge                 413 request_too_large
    ├── ConcurrencyLimit             429 concurrency_limit (Retry-After)
    ├── ValidatorQuota               429 validator_quota (Retry-After)
    ├── ClientClosed                 499 client_closed_request (nobody reads it)
    ├── EngineFailure                500 engine_error
    └── MetagraphUnavailable         503 metagraph_unavailable (Retry-After)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import msgspec

from inference.base import EngineError, EngineInputError
from protocol.openai.common import ErrorDetail, ErrorResponse
from protocol.validation import describe_error, param_from_error

_ENCODER = msgspec.json.Encoder()


class MinerError(Exception):
    status_code = 500
    error_type = "server_error"
    default_code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}

    def detail(self) -> ErrorDetail:
        return ErrorDetail(
            message=self.message, type=self.error_type, param=self.param, code=self.code
        )

    def body(self) -> bytes:
        return _ENCODER.encode(ErrorResponse(error=self.detail()))


class InvalidRequest(MinerError):
    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class AuthFailed(MinerError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_signature"


class ModelNotFound(MinerError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"

    def __init__(self, model: str | None) -> None:
        super().__init__(
            f"The model `{model}` is not served here for this endpoint.", param="model"
        )


class BodyTooLarge(MinerError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class ConcurrencyLimit(MinerError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "concurrency_limit"

    def __init__(self, task_id: str, limit: int) -> None:
        super().__init__(
            f"{task_id}: {limit} requests already in flight; retry later.",
            headers={"retry-after": "1"},
        )


class ValidatorRefused(MinerError):
    """The signature is good but the sender may not use this miner (stake gate)."""

    status_code = 403
    error_type = "permission_error"
    default_code = "validator_not_registered"


class ValidatorQuota(MinerError):
    """The validator already has its stake-proportional share of the task's slots in flight."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "validator_quota"

    def __init__(self, task_id: str, quota: int) -> None:
        super().__init__(
            f"{task_id}: this validator's share of the miner ({quota} in flight) is in use; "
            "retry later.",
            headers={"retry-after": "1"},
        )


class MetagraphUnavailable(MinerError):
    """The miner has not been able to read the metagraph yet, so it cannot check stakes."""

    status_code = 503
    error_type = "server_error"
    default_code = "metagraph_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "30"})


class ClientClosed(MinerError):
    status_code = 499
    error_type = "invalid_request_error"
    default_code = "client_closed_request"


class EngineFailure(MinerError):
    status_code = 500
    error_type = "server_error"
    default_code = "engine_error"


class Unsupported(InvalidRequest):
    default_code = "unsupported_parameter"

    def __init__(self, param: str, what: str | None = None) -> None:
        super().__init__(f"`{param}` is not supported by this miner{what or ''}.", param=param)


def from_validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> InvalidRequest:
    """A msgspec decode error as a 400 naming the field (``$.messages[0].role`` →
    ``messages[0].role``); malformed JSON has no param."""
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return InvalidRequest(f"Request body is not valid JSON: {text}", code="invalid_json")
    path = param_from_error(text)
    message = describe_error(text)
    return InvalidRequest(f"{path}: {message}" if path else message, param=path)


def from_engine_error(exc: EngineError, *, param: str | None = None) -> MinerError:
    """An engine's refusal is the client's fault (400); any other engine failure is ours (500)."""
    if isinstance(exc, EngineInputError):
        return InvalidRequest(str(exc), param=param)
    return EngineFailure(str(exc))


@contextlib.contextmanager
def engine_errors(*, param: str | None = None) -> Iterator[None]:
    """Raise engine errors inside the block as the matching ``MinerError``."""
    try:
        yield
    except EngineError as exc:
        raise from_engine_error(exc, param=param) from exc
