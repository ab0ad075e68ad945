"""Decoding request bodies strictly, with OpenAI-style 400s that name the offending ``param``.

msgspec reports where a value failed as a JSONPath (``... - at `$.messages[0].content` ``) and
names unknown or missing fields in the message; ``param_from_error`` turns both into OpenAI's
``param`` (``messages[0].content``, ``temperature``, ``foo``).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from core.errors import InvalidRequest

T = TypeVar("T")

_FIELD_NAMED = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]*)`")
_PATH = re.compile(r" - at `\$(.*)`$")


def param_from_error(message: str) -> str | None:
    """``"Object missing required field `role` - at `$.messages[0]`"`` → ``messages[0].role``."""
    path = ""
    where = _PATH.search(message)
    if where is not None:
        path = where.group(1).replace("[...]", "").removeprefix(".")
    named = _FIELD_NAMED.match(message)
    if named is not None:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


def _describe(message: str) -> str:
    return _PATH.sub("", message)


def invalid_from(exc: Exception) -> InvalidRequest:
    if isinstance(exc, msgspec.ValidationError):
        message = str(exc)
        param = param_from_error(message)
        text = _describe(message)
        if param:
            text = f"Invalid value for '{param}': {text}"
        return InvalidRequest(text, param=param, code="invalid_value")
    if isinstance(exc, UnicodeDecodeError):
        return InvalidRequest("The request body is not valid UTF-8.", code="invalid_json")
    return InvalidRequest(
        f"We could not parse the JSON body of your request ({exc}).", code="invalid_json"
    )


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode and validate a JSON body; any problem is a 400 ``invalid_request_error``."""
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise invalid_from(exc) from None


def convert(data: Any, type_: type[T]) -> T:
    """Validate already-parsed data (e.g. multipart form fields, strings coerced)."""
    try:
        return msgspec.convert(data, type=type_, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid_from(exc) from None


def unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")
