"""btauth/1: every work and capacity request is signed by a validator's hotkey (SPEC §2).

Verification is the SDK's (``bittensor.http_auth.verify``) over the exact bytes received: the
method, the request target as sent (path plus query string), the sha256 of the raw body, the
nonce and the receiver, which must be this miner's hotkey. One in-memory nonce store per app
remembers accepted nonces for at least the freshness window, so a replay inside the window is
refused. Failures are 401s whose ``code`` says why; the SDK's messages never echo the signature or
payload, so they are returned as they are.
"""

from __future__ import annotations

from typing import Any

import msgspec
from bittensor import http_auth

from miner_server.errors import AuthFailed

_HEADER_PREFIX = b"x-bittensor-"

_CODES: tuple[tuple[type[http_auth.AuthError], str], ...] = (
    (http_auth.WrongReceiver, "wrong_receiver"),
    (http_auth.StaleRequest, "stale_nonce"),
    (http_auth.ReplayedRequest, "replayed_nonce"),
    (http_auth.BadSignature, "invalid_signature"),
)


class Caller(msgspec.Struct, frozen=True):
    """The authenticated validator behind a request, and its stake share once the stake gate
    has admitted it (``miner_server.stakes``; 1 without a metagraph)."""

    hotkey: str
    nonce_ns: int
    share: float = 1.0


class Signed(msgspec.Struct, frozen=True):
    """A verified request: who sent it and the raw body the signature covers."""

    caller: Caller
    body: bytes


class Verifier:
    """Checks btauth/1 headers against this miner's hotkey; one per app."""

    __slots__ = ("allowed_skew_s", "hotkey", "max_age_s", "nonces")

    def __init__(self, hotkey: str, *, max_age_s: float, allowed_skew_s: float) -> None:
        self.hotkey = hotkey
        self.max_age_s = max_age_s
        self.allowed_skew_s = allowed_skew_s
        # Entries must outlive the whole window, or a replay inside the gap would pass.
        self.nonces = http_auth.InMemoryNonceStore(retention=max_age_s + allowed_skew_s + 1.0)

    def verify(self, scope: Any, body: bytes) -> Caller:
        """Authenticate an ASGI request whose body was read into `body`; raise ``AuthFailed``."""
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key[:12].lower() == _HEADER_PREFIX
        }
        if not headers:
            raise AuthFailed(
                "This endpoint requires a btauth/1 signed request (X-Bittensor-* headers).",
                code="missing_signature",
            )
        try:
            caller = http_auth.verify(
                headers,
                body,
                method=scope["method"],
                path=request_target(scope),
                self_hotkey_ss58=self.hotkey,
                max_age=self.max_age_s,
                allowed_skew=self.allowed_skew_s,
                nonce_store=self.nonces,
            )
        except http_auth.AuthError as exc:
            raise AuthFailed(str(exc), code=_code_for(exc)) from None
        return Caller(hotkey=caller.hotkey_ss58, nonce_ns=caller.nonce_ns)


def request_target(scope: Any) -> str:
    """The request target exactly as received: raw path plus ``?query`` when there is one."""
    raw: bytes | None = scope.get("raw_path")
    if raw and b"?" in raw:  # some servers keep the query string in raw_path
        return raw.decode("latin-1")
    path = raw.decode("latin-1") if raw else scope["path"]
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _code_for(exc: http_auth.AuthError) -> str:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, http_auth.MalformedAuth) and str(exc).startswith("missing"):
        return "missing_signature"
    return "invalid_signature"
