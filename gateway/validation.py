"""Decoding request bodies strictly, with OpenAI-style 400s that name the offending ``param``.

``protocol.validation.param_from_error`` turns msgspec's error location into OpenAI's ``param``;
``protocol.openai.shapes`` checks the loosely typed fields (``prompt``, ``input``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from core.errors import InvalidRequest, UnsupportedParameter
from protocol.openai.shapes import ShapeError
from protocol.validation import describe_error, param_from_error

T = TypeVar("T")


def invalid_from(exc: Exception) -> InvalidRequest:
    if isinstance(exc, msgspec.ValidationError):
        message = str(exc)
        param = param_from_error(message)
        text = describe_error(message)
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


def unsupported(param: str, message: str) -> UnsupportedParameter:
    return UnsupportedParameter(message, param=param)


def shaped(error: ShapeError) -> InvalidRequest:
    """A ``protocol.openai.shapes`` refusal as the gateway's 400."""
    if error.unsupported:
        return unsupported(error.param, str(error))
    return InvalidRequest(str(error), param=error.param, code="invalid_value")
