"""Random tokens (session cookies, invitation links, the pre-sign-in CSRF cookie) and what is
stored of them: SHA-256, never the token. CSRF tokens are derived from the cookie's token, so a
page can only be forged by someone who can read that HttpOnly cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(cookie_token: str) -> str:
    """The form token bound to one session (or pre-sign-in) cookie."""
    digest = hmac.new(cookie_token.encode("utf-8"), b"sn19-dashboard-csrf", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")


def csrf_matches(cookie_token: str | None, sent: str | None) -> bool:
    if not cookie_token or not sent:
        return False
    return hmac.compare_digest(csrf_token(cookie_token), sent)
