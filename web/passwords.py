"""Password hashing: argon2id (argon2-cffi's defaults: 64 MiB, 3 passes, 4 lanes).

Hashing costs tens of milliseconds of CPU on purpose, so the async helpers run it in a worker
thread. ``verify`` of an unknown user still hashes (against a fixed dummy hash), so a sign-in
takes as long whether or not the e-mail exists.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher(type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    hashed: str = _hasher.hash("sn19-dashboard-dummy-password")
    return hashed


def password_problem(password: str) -> str | None:
    """Why a new password is refused (None: acceptable)."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "The password must not be blank."
    return None


def hash_password(password: str) -> str:
    hashed: str = _hasher.hash(password)
    return hashed


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-time check; ``stored_hash`` None (unknown user, no password yet) still costs
    one hash so the timing does not tell whether the account exists."""
    try:
        return (
            bool(_hasher.verify(stored_hash or _dummy_hash(), password)) and stored_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return bool(_hasher.check_needs_rehash(stored_hash))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, stored_hash, password)
