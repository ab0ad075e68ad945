"""API key secrets: format, checksum, keyed hash; and ``KeyContext``, what auth resolves a key to.

A secret is ``sk-sn19-`` + 32 random base62 characters (190 bits from ``secrets``) + a 6-character
base62 CRC32 checksum of everything before it (46 characters). The checksum lets the gateway
reject typos and random strings before any cache or database lookup; it is not a secret and
adds no security. Only ``HMAC-SHA256(billing.key_hash_secret, secret)`` is stored; the display
prefix keeps ``sk-sn19-`` plus the first 4 random characters and the last 4 (checksum) ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

import msgspec

from core.settings import Settings
from protocol.config import ConfigError

KEY_PREFIX = "sk-sn19-"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(KEY_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALPHABET_SET = frozenset(_ALPHABET)
# Used only when environment == "dev"; anywhere else an empty secret is a configuration error.
DEV_KEY_HASH_SECRET = "sn19-dev-key-hash-secret-not-for-production"  # noqa: S105 - dev only


def _base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate_secret() -> str:
    body = KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _checksum(body)


def is_well_formed(raw: str) -> bool:
    """Right prefix, length, alphabet and checksum (constant work for a given length)."""
    if len(raw) != KEY_LENGTH or not raw.startswith(KEY_PREFIX):
        return False
    tail = raw[len(KEY_PREFIX) :]
    if not _ALPHABET_SET.issuperset(tail):
        return False
    body, check = raw[:-CHECKSUM_LENGTH], raw[-CHECKSUM_LENGTH:]
    return hmac.compare_digest(_checksum(body), check)


def display_parts(raw: str) -> tuple[str, str]:
    """(prefix, last4) kept for display: ``sk-sn19-AbCd`` and the checksum's last 4."""
    return raw[: len(KEY_PREFIX) + 4], raw[-4:]


def display(prefix: str, last4: str) -> str:
    return f"{prefix}…{last4}"


class KeyHasher:
    """HMAC-SHA256 of secrets under the server's key-hash secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ConfigError("billing.key_hash_secret: must not be empty")
        self._key = secret.encode("utf-8")

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyHasher:
        secret = settings.billing.key_hash_secret.get()
        if not secret:
            if settings.environment != "dev":
                raise ConfigError(
                    "billing.key_hash_secret: required outside dev "
                    "(set SN19_BILLING__KEY_HASH_SECRET to a long random string)"
                )
            secret = DEV_KEY_HASH_SECRET
        return cls(secret)

    def hash(self, raw: str) -> str:
        return hmac.new(self._key, raw.encode("utf-8"), hashlib.sha256).hexdigest()

    def matches(self, raw: str, stored_hash: str) -> bool:
        return hmac.compare_digest(self.hash(raw), stored_hash)


class KeyContext(msgspec.Struct, frozen=True):
    """What an authenticated request carries: the key, its account, limits and caps.

    Cached in-process and in Redis (msgspec JSON), so it holds no secret and no hash.
    Spend caps are micro-credits; limits of ``None`` are unlimited.
    """

    key_id: int
    account_id: int
    name: str
    prefix: str
    allowed_models: tuple[str, ...] | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    daily_spend_cap: int | None = None
    monthly_spend_cap: int | None = None
    # Unix seconds; None: never expires.
    expires_at: float | None = None
    revoked: bool = False
    account_active: bool = True

    def allows(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"
