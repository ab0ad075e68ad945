"""Decoding request bodies strictly, with OpenAI-style 400s that name the offending ``param``.

``protocol.validation.param_from_error`` turns msgspec's error location into OpenAI's ``param``;
``protocol.openai.shapes`` checks the loosely typed fields (``prompt``, ``input``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

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


def convert(data: dict[str, str], type_: type[T]) -> T:
    """Validate text fields (multipart form fields, query parameters), strings coerced to the
    field's type. A field that is given is never null: ``n=null`` is refused, not read as
    "not sent" (msgspec's lax mode would turn the text "null" into None)."""
    try:
        value = msgspec.convert(data, type=type_, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid_from(exc) from None
    for name in data:
        if getattr(value, name, None) is None:
            raise InvalidRequest(
                f"Invalid value for '{name}': expected a value, got {data[name][:64]!r}.",
                param=name,
            )
    return value


async def json_body(request: Request[Any, Any, Any]) -> bytes:
    """The body of a JSON request; a body sent with another content type is a 400 (a header
    left out is taken as JSON)."""
    media = request.headers.get("content-type")
    if media is not None:
        kind = media.partition(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise InvalidRequest(
                f"Send the request body as JSON with 'Content-Type: application/json' "
                f"(got '{kind[:64]}').",
                code="invalid_content_type",
            )
    return await request.body()


def unsupported(param: str, message: str) -> UnsupportedParameter:
    return UnsupportedParameter(message, param=param)


def shaped(error: ShapeError) -> InvalidRequest:
    """A ``protocol.openai.shapes`` refusal as the gateway's 400."""
    if error.unsupported:
        return unsupported(error.param, str(error))
    return InvalidRequest(str(error), param=error.param, code=error.code or "invalid_value")
