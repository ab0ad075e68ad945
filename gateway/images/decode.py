"""Decoding images with Pillow under size limits: what miners return and what clients upload.

Runs in a worker thread (``asyncio.to_thread``): decoding a large PNG takes milliseconds of CPU
that must not stall the event loop.
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
MAX_PIXELS = 4096 * 4096


class ImageInfo:
    __slots__ = ("format", "height", "width")

    def __init__(self, width: int, height: int, format_: str) -> None:
        self.width = width
        self.height = height
        self.format = format_


def inspect_image(data: bytes) -> ImageInfo:
    """Fully decode ``data``; raise ``ValueError`` unless it is a PNG/JPEG/WebP within limits."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ALLOWED_FORMATS:
                raise ValueError(f"unsupported image format {image.format}")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"image too large ({width}x{height})")
            image.load()
            return ImageInfo(width, height, image.format)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a decodable image: {exc}") from None


def decode_b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def check_miner_images(images: list[str], *, count: int, width: int, height: int) -> None:
    """Raise ``ValueError`` unless there are ``count`` decodable images of the asked size."""
    if len(images) != count:
        raise ValueError(f"{len(images)} images for n={count}")
    for encoded in images:
        info = inspect_image(decode_b64(encoded))
        if (info.width, info.height) != (width, height):
            raise ValueError(f"image is {info.width}x{info.height}, not {width}x{height}")
