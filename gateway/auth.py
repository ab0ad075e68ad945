"""Who is calling: the API key → a ``Caller``.

``BillingAuthenticator`` (billing on) resolves database API keys through
``billing.KeyAuthenticator`` (in-process cache → Redis → database; no database read per request
while cached); the caller then carries billing's ``KeyContext`` (its account, model allowlist,
limits and caps). ``StaticKeyAuthenticator`` is the billing-off mode: the key must equal one of
``settings.gateway.api_keys`` (constant-time).

Keys are read from ``Authorization: Bearer <key>``, else ``api-key`` (Azure style), else
``x-api-key`` (Anthropic style).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Protocol

import msgspec

from billing import KeyAuthenticator, KeyContext
from core.errors import AuthenticationFailed

NO_KEY = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."


class Caller(msgspec.Struct, frozen=True):
    """The authenticated caller. ``allowed_models`` None: every model."""

    key_id: str
    account_id: str | None = None
    allowed_models: frozenset[str] | None = None
    # Billing's record of the key (None for static keys).
    key: KeyContext | None = None


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
            raise AuthenticationFailed(NO_KEY)
        presented = key.encode()
        found: str | None = None
        for secret, key_id in self._keys:
            if hmac.compare_digest(presented, secret):
                found = key_id
        if found is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return Caller(key_id=found)


class BillingAuthenticator:
    """API keys resolved by ``billing.KeyAuthenticator``."""

    def __init__(self, keys: KeyAuthenticator) -> None:
        self._keys = keys
        # The Caller of each cached KeyContext, rebuilt only when the context object changes.
        self._callers: dict[int, tuple[KeyContext, Caller]] = {}

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        raw = api_key_from(headers)
        if raw is None:
            raise AuthenticationFailed(NO_KEY)
        key = await self._keys.authenticate(raw)
        cached = self._callers.get(key.key_id)
        if cached is not None and cached[0] is key:
            return cached[1]
        caller = Caller(
            key_id=str(key.key_id),
            account_id=str(key.account_id),
            allowed_models=frozenset(key.allowed_models)
            if key.allowed_models is not None
            else None,
            key=key,
        )
        if len(self._callers) > 100_000:
            self._callers.clear()
        self._callers[key.key_id] = (key, caller)
        return caller
