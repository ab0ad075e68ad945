"""Identifiers the gateway mints: request ids and OpenAI-style object ids."""

from __future__ import annotations

import os
import re

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id_from(header: str | None) -> str:
    """The client's ``x-request-id`` if it is sane (≤128 chars of ``[A-Za-z0-9._:-]``), else a
    new one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return new_request_id()


def object_id(prefix: str) -> str:
    """``chatcmpl-…`` / ``cmpl-…``: the id every chunk of one response carries."""
    return prefix + os.urandom(12).hex()
