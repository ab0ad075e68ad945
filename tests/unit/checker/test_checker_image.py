"""The image check: safe decoding of the delivered bytes, and the similarity score."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from checker.image import ImageRejected, check_image, compare, decode_image, embedding_cosine
from core.checks import ImageResponse
from inference.base import ImageRequest
from protocol.catalog import CheckSpec

SPEC = CheckSpec()


def pixels(seed: int, size: int = 64) -> np.ndarray:
    """A smooth random image with some texture (like the dev pipeline's output)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    noise = rng.normal(0, 12, (size, size, 3))
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "fmt", "code"),
    [
        (b"", "png", "image_undecodable"),
        (b"not an image at all", "png", "image_undecodable"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "png", "image_undecodable"),
        (encode(pixels(1, 32)), "png", "image_size"),
        (encode(pixels(1), "JPEG"), "png", "image_format"),
        (encode(pixels(1)), "jpeg", "image_format"),
        (png_header_only(60_000, 60_000), "png", "image_size"),
        (png_header_only(64, 64), "png", "image_undecodable"),
    ],
)
def test_delivered_bytes_are_refused_safely(data: bytes, fmt: str, code: str) -> None:
    with pytest.raises(ImageRejected) as raised:
        decode_image(data, 64, 64, fmt)
    assert raised.value.code == code


def test_lossless_re_encoding_is_the_same_image() -> None:
    image = pixels(2)
    again = decode_image(encode(image, "PNG", compress_level=1), 64, 64, "png").pixels
    assert compare(again, image, SPEC)["score"] == 1.0
    webp = decode_image(encode(image, "WEBP", lossless=True), 64, 64, "webp").pixels
    assert compare(webp, image, SPEC)["score"] == 1.0


def test_rounding_noise_passes() -> None:
    image = pixels(3)
    rng = np.random.default_rng(0)
    noisy = np.clip(image.astype(int) + rng.integers(-1, 2, image.shape), 0, 255).astype(np.uint8)
    result = compare(noisy, image, SPEC)
    assert result["score"] == 1.0 and result["psnr_db"] > 45


@pytest.mark.parametrize(
    "degrade",
    [
        lambda img: pixels(99),  # another image
        lambda img: np.asarray(Image.open(io.BytesIO(encode(img, "JPEG", quality=75)))),
        lambda img: np.asarray(
            Image.fromarray(img).resize((32, 32)).resize((64, 64), Image.Resampling.BICUBIC)
        ),
    ],
)
def test_other_or_degraded_images_score_low(degrade) -> None:
    image = pixels(4)
    assert compare(degrade(image), image, SPEC)["score"] <= 0.2


def test_embedding_cosine_sees_layout_not_noise() -> None:
    image = pixels(5)
    assert embedding_cosine(image, image) == pytest.approx(1.0)
    assert embedding_cosine(pixels(6), image) < 0.5
    flat = np.full((64, 64, 3), 120, np.uint8)
    assert embedding_cosine(flat, flat) == 1.0
    assert embedding_cosine(flat, np.full((64, 64, 3), 30, np.uint8)) == 0.0


class StaticReference:
    def __init__(self, images: list[bytes]) -> None:
        self.images = images
        self.requests: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> list[bytes]:
        self.requests.append(request)
        return self.images


async def test_check_image_scores_the_worst_image() -> None:
    good, other = encode(pixels(7)), encode(pixels(8))
    request = ImageRequest(prompt="p", width=64, height=64, steps=10, seed=1, n=2)
    reference = StaticReference([good, good])
    passed = await check_image(request, ImageResponse(images=[good, good]), reference, SPEC)
    assert passed.quality == 1.0 and passed.work == 20
    failed = await check_image(request, ImageResponse(images=[good, other]), reference, SPEC)
    assert failed.code == "image_dissimilar" and failed.quality < 0.2
    assert "image 1" in failed.reason


async def test_check_image_refuses_before_regenerating() -> None:
    request = ImageRequest(prompt="p", width=64, height=64, steps=10, seed=1, n=2)
    reference = StaticReference([])
    counted = await check_image(request, ImageResponse(images=[b"x"]), reference, SPEC)
    assert counted.code == "image_count"
    broken = await check_image(request, ImageResponse(images=[b"x", b"y"]), reference, SPEC)
    assert broken.code == "image_undecodable" and reference.requests == []
