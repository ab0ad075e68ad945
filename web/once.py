"""One-time views: post/redirect/get for forms that create something secret.

A form that creates a key (or rotates one, or makes an invitation link) does its work, then
answers ``303`` to ``/once/<id>``; reloading that page, or going back, never sends the form
again. The page shows the secret once: reading it deletes the row, so a reload says it was
already shown.

The secret is never stored as it is: the row (``web_one_time_views``) holds it XOR a random
pad of the same length, and the pad travels only in an HttpOnly cookie scoped to that one view's
path (``pad_cookie``). Neither the database nor the cookie alone reveals anything (a one-time
pad); only the browser session that made it can read it, and only until ``ttl_s``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.web import OneTimeView

KINDS = ("key", "rotated", "invite")
# The pad's cookie: one per view, scoped to that view's path.
COOKIE = "sn19_once"
TTL_S = 600
_MAX_TEXT = 2048


@dataclass(frozen=True)
class Shown:
    kind: str
    text: str
    subject_id: int
    back: str


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


class OneTimeViews:
    def __init__(self, db: Database, *, ttl_s: int = TTL_S) -> None:
        self._db = db
        self.ttl_s = ttl_s

    async def create(
        self, session_id: int, kind: str, text: str, *, subject_id: int = 0, back: str = ""
    ) -> tuple[str, str]:
        """Seal ``text`` for the browser session: ``(view id, pad as hex for its cookie)``."""
        if kind not in KINDS:
            raise ValueError(f"unknown one-time view kind {kind!r}")
        data = text.encode()
        if len(data) > _MAX_TEXT:
            raise ValueError("one-time text too long")
        pad = secrets.token_bytes(len(data))
        view_id = secrets.token_urlsafe(24)
        now = utcnow()
        async with self._db.transaction() as session:
            # Housekeeping: views nobody opened in time.
            await session.execute(delete(OneTimeView).where(OneTimeView.expires_at < now))
            session.add(
                OneTimeView(
                    id=view_id,
                    session_id=session_id,
                    kind=kind,
                    sealed=_xor(data, pad),
                    subject_id=subject_id,
                    back=back[:300],
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.ttl_s),
                )
            )
        return view_id, pad.hex()

    async def take(self, view_id: str, session_id: int, pad_hex: str | None) -> Shown | None:
        """The view's text, once (the row is deleted); None when it was already shown, has
        expired, belongs to another session or the pad is missing or wrong."""
        if not pad_hex or len(view_id) > 64:
            return None
        try:
            pad = bytes.fromhex(pad_hex)
        except ValueError:
            return None
        async with self._db.transaction() as session:
            row = await session.scalar(
                select(OneTimeView).where(OneTimeView.id == view_id).with_for_update()
            )
            if row is None or row.session_id != session_id:
                return None
            await session.execute(delete(OneTimeView).where(OneTimeView.id == view_id))
            if row.expires_at <= utcnow() or len(pad) != len(row.sealed):
                return None
            try:
                text = _xor(row.sealed, pad).decode()
            except UnicodeDecodeError:
                return None
            return Shown(row.kind, text, row.subject_id, row.back)
