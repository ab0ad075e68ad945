"""The validator kernel: settings, the error hierarchy, Redis, the chain adapter, token counting,
logging and telemetry set-up, and the miner-facing layer (``core.miners``).

Exported here: what is cheap to import. ``core.telemetry`` (OpenTelemetry, Prometheus) and
``core.miners`` (aiohttp, bittensor) are imported from their modules by the processes that use
them, so importing ``core.settings`` stays light.
"""

from core.errors import (
    AppError,
    AuthenticationFailed,
    InsufficientQuota,
    InvalidRequest,
    ModelNotFound,
    NoCapacity,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    UnsupportedParameter,
    UpstreamError,
    UpstreamTimeout,
)
from core.tokens import TokenCounter, load_task_counters, load_token_counter

__all__ = [
    "AppError",
    "AuthenticationFailed",
    "InsufficientQuota",
    "InvalidRequest",
    "ModelNotFound",
    "NoCapacity",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "TokenCounter",
    "UnsupportedParameter",
    "UpstreamError",
    "UpstreamTimeout",
    "load_task_counters",
    "load_token_counter",
]
