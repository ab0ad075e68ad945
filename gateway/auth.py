"""Who is calling: the API key → a ``Caller``.

``Authenticator`` is the seam billing replaces with database-backed API keys (hash lookup with
an in-process cache, per-key model allowlists and limits). ``StaticKeyAuthenticator`` is the
billing-off mode: the key must equal one of ``settings.gateway.api_keys`` (constant-time).

Keys are read from ``Authorization: Bearer <key>``, else ``api-key`` (Azure style), else
``x-api-key`` (Anthropic style).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import msgspec

from core.errors import AuthenticationFailed


class Caller(msgspec.Struct, frozen=True):
    """The authenticated caller. ``allowed_models`` None: every model."""

    key_id: str
    account_id: str | None = None
    allowed_models: frozenset[str] | None = None
    # The authenticator's own record (billing: its KeyContext), for its accounting.
    context: Any = None


class Authenticator(Protocol):
    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller, or raise ``AuthenticationFailed`` (401) / ``PermissionDenied`` (403)."""


def api_key_from(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return headers.get("api-key") or headers.get("x-api-key") or None


class StaticKeyAuthenticator:
    """Accepts the configured static keys; the key id is a short hash (never the key)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [
            (key.encode(), "key_" + hashlib.sha256(key.encode()).hexdigest()[:12])
            for key in keys
            if key
        ]

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        key = api_key_from(headers)
        if key is None:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
            )
        presented = key.encode()
        found: str | None = None
        for secret, key_id in self._keys:
            if hmac.compare_digest(presented, secret):
                found = key_id
        if found is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return Caller(key_id=found)
