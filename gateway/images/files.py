"""Images answered as URLs (``response_format: "url"``) and ``GET /v1/images/files/{name}``.

The gateway keeps each image's bytes in Redis under ``<prefix>image:<id>`` for
``gateway.image_url_ttl_s`` (an hour by default, as OpenAI's image URLs), so every replica
behind the same Redis serves every URL; after that the URL answers 404 ``image_expired``. The
id is 32 random bytes: the URL is the credential (no API key is needed to fetch it, as with
OpenAI's signed URLs), so share it only with whoever may see the image. The URL's base is
``gateway.public_url`` when set, else the address the request came to.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from litestar import Request, get
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp
from redis.exceptions import RedisError

from core.errors import AppError, NotFound
from gateway.state import Gateway

FILES = "/v1/images/files/{name:str}"
FILES_PREFIX = "/v1/images/files/"
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
NAME_PATTERN = r"^([A-Za-z0-9_-]{43})\.(png|jpeg|webp)$"
_NAME = re.compile(NAME_PATTERN)


class ImageStoreUnavailable(AppError):
    """Redis did not take the images: nothing was charged, the client may retry."""

    status_code = 503
    openai_type = "server_error"
    default_code = "image_storage_unavailable"


def _key(gateway: Gateway, file_id: str) -> str:
    return f"{gateway.settings.redis.key_prefix}image:{file_id}"


def url_base(request: Request[Any, Any, Any], gateway: Gateway) -> str:
    """Where the client reaches this gateway: ``gateway.public_url``, else the request's."""
    public = gateway.settings.gateway.public_url
    return (public or str(request.base_url)).rstrip("/")


async def store_images(gateway: Gateway, base: str, images: list[str], fmt: str) -> list[str]:
    """Keep the (base64) images for the URL lifetime; their URLs."""
    ttl_ms = int(gateway.settings.gateway.image_url_ttl_s * 1000)
    names = [f"{secrets.token_urlsafe(32)}.{fmt}" for _ in images]
    try:
        async with gateway.redis.pipeline(transaction=False) as pipe:
            for name, image in zip(names, images, strict=True):
                pipe.set(_key(gateway, name), base64.b64decode(image), px=ttl_ms)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        raise ImageStoreUnavailable(
            f"The image could not be stored for its URL ({type(exc).__name__}); retry, or ask "
            "for response_format 'b64_json'."
        ) from exc
    return [f"{base}{FILES_PREFIX}{name}" for name in names]


@get(FILES)
async def image_file(gateway: Gateway, name: str) -> ASGIApp:
    """One stored image, while its URL lives (no API key: the URL is the credential)."""
    match = _NAME.match(name)
    data = await gateway.redis.get(_key(gateway, name)) if match else None
    if data is None:
        raise NotFound(
            "No such image: its URL is wrong or has expired "
            f"(URLs live {gateway.settings.gateway.image_url_ttl_s:g} s).",
            code="image_expired",
        )
    assert match is not None
    return ASGIResponse(
        body=bytes(data),
        media_type=MEDIA[match.group(2)],
        status_code=200,
        headers={"cache-control": "private, max-age=300"},
    )
