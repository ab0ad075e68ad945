"""The image check (SPEC §5): regenerate on the reference pipeline, compare the delivered pixels.

The delivered bytes are decoded here (upstream trusted hashes the miner reported about its own
image). Per image ``i`` (seed ``seed + i``), against the reference image of the same request:

- the bytes must decode (Pillow; PNG, JPEG or WebP) in the requested ``output_format`` at the
  requested size — checked from the header before any pixel is decoded, so a decompression bomb
  is refused unread;
- perceptual similarity ``p = 0.4·h + 0.6·max(0, e)``: ``h`` = 1 − (mean Hamming distance of
  the 64-bit phash, dhash and average hash)/32 (0 for unrelated images), ``e`` = cosine of the
  mean-centred 16×16 CIELAB thumbnails (the low-frequency layout and colour of the image; CLIP
  is not available offline, and the random-weight dev VAE is no more semantic than this);
- fidelity ``f`` from the PSNR of the RGB pixels: 1 at ``image_psnr_full`` dB or more, 0 at
  ``image_psnr_zero`` or less, linear between. Honest machines differ by float rounding (same
  uint8 pixels on CPUs; a few levels at most with other kernels), everything else a cheat does
  (another seed or prompt, resizing, lossy re-compression) moves pixels far more;
- ``s = p × f``; the image scores 1.0 when ``s ≥ image_similarity`` (0.95), else ``s²``.

The job's quality is its worst image.
"""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from checker.outcome import CheckOutcome, failed, passed
from core.checks import ImageResponse
from inference.base import EngineInputError, ImageRequest
from protocol.catalog import CheckSpec

if TYPE_CHECKING:
    import numpy

FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_PIXELS = 4096 * 4096
THUMBNAIL = 16
HASH_BITS_UNRELATED = 32.0
PSNR_IDENTICAL = 99.0


class ImageReference(Protocol):
    async def generate(self, request: ImageRequest) -> list[bytes]: ...


class ImageRejected(ValueError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decoded:
    format: str
    pixels: numpy.ndarray  # [height, width, 3] uint8


def decode_image(data: bytes, width: int, height: int, expected_format: str | None) -> Decoded:
    """Decode delivered bytes safely: format and size from the header first, then pixels."""
    import numpy
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageRejected("image_undecodable", "empty image bytes")
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS.values())) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageRejected(
                    "image_size", f"{image.width}x{image.height} pixels is over the limit"
                )
            if (image.width, image.height) != (width, height):
                raise ImageRejected(
                    "image_size",
                    f"the image is {image.width}x{image.height}, {width}x{height} was asked for",
                )
            found = str(image.format)
            if expected_format is not None and found != FORMATS.get(expected_format, "?"):
                raise ImageRejected(
                    "image_format", f"the image is {found}, {expected_format} was asked for"
                )
            pixels = numpy.asarray(image.convert("RGB"), dtype=numpy.uint8)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image_size", f"refused (decompression bomb): {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageRejected(
            "image_undecodable", f"the bytes are not a readable image: {exc}"
        ) from None
    return Decoded(format=found, pixels=pixels)


# ---------------------------------------------------------------------------------------------
# Similarity


def _hashes(pixels: numpy.ndarray) -> list[Any]:
    import imagehash
    from PIL import Image

    image = Image.fromarray(pixels)
    return [imagehash.phash(image), imagehash.dhash(image), imagehash.average_hash(image)]


def lab_thumbnail(pixels: numpy.ndarray) -> numpy.ndarray:
    """The image averaged down to 16×16 and converted to CIELAB (D65), as a flat vector."""
    import numpy
    from PIL import Image

    small = Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    rgb = numpy.asarray(small, dtype=numpy.float64) / 255.0
    linear = numpy.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = numpy.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear @ matrix.T / numpy.array([0.95047, 1.0, 1.08883])
    delta = 6.0 / 29.0
    f = numpy.where(xyz > delta**3, numpy.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    lab = numpy.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )
    result: numpy.ndarray = lab.reshape(-1, 3)
    return result


def embedding_cosine(first: numpy.ndarray, second: numpy.ndarray) -> float:
    """Cosine of the mean-centred Lab thumbnails; two flat images compare by mean colour."""
    import numpy

    a, b = lab_thumbnail(first), lab_thumbnail(second)
    mean_gap = float(numpy.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))
    a, b = (a - a.mean(axis=0)).ravel(), (b - b.mean(axis=0)).ravel()
    norm_a, norm_b = float(numpy.linalg.norm(a)), float(numpy.linalg.norm(b))
    if norm_a < 1e-6 or norm_b < 1e-6:
        return 1.0 if norm_a < 1e-6 and norm_b < 1e-6 and mean_gap < 2.0 else 0.0
    return float(a @ b) / (norm_a * norm_b)


def psnr(first: numpy.ndarray, second: numpy.ndarray) -> float:
    import numpy

    mse = float(numpy.mean((first.astype(numpy.float64) - second.astype(numpy.float64)) ** 2))
    if mse <= 0.0:
        return PSNR_IDENTICAL
    return min(PSNR_IDENTICAL, 10.0 * math.log10(255.0**2 / mse))


def compare(
    delivered: numpy.ndarray, reference: numpy.ndarray, spec: CheckSpec
) -> dict[str, float]:
    """The similarity numbers of one delivered image against its reference, and its score."""
    import numpy

    distances = [float(a - b) for a, b in zip(_hashes(delivered), _hashes(reference), strict=True)]
    hash_similarity = max(0.0, 1.0 - (sum(distances) / len(distances)) / HASH_BITS_UNRELATED)
    cosine = embedding_cosine(delivered, reference)
    perceptual = 0.4 * hash_similarity + 0.6 * max(0.0, cosine)
    fidelity_db = psnr(delivered, reference)
    span = spec.image_psnr_full - spec.image_psnr_zero
    fidelity = (
        1.0
        if fidelity_db >= spec.image_psnr_full
        else (max(0.0, (fidelity_db - spec.image_psnr_zero) / span) if span > 0 else 0.0)
    )
    similarity = perceptual * fidelity
    score = 1.0 if similarity >= spec.image_similarity else similarity**2
    diff = numpy.abs(delivered.astype(numpy.int16) - reference.astype(numpy.int16))
    return {
        "phash": distances[0],
        "dhash": distances[1],
        "ahash": distances[2],
        "hash_similarity": hash_similarity,
        "embedding_cosine": cosine,
        "perceptual": perceptual,
        "psnr_db": fidelity_db,
        "fidelity": fidelity,
        "max_pixel_diff": float(diff.max()),
        "similarity": similarity,
        "score": score,
    }


# ---------------------------------------------------------------------------------------------


async def check_image(
    request: ImageRequest, response: ImageResponse, reference: ImageReference, spec: CheckSpec
) -> CheckOutcome:
    work = float(request.steps * request.n)
    evidence: dict[str, Any] = {"n": request.n, "size": f"{request.width}x{request.height}"}
    if len(response.images) != request.n:
        return failed(
            "image_count",
            f"{request.n} images were asked for, {len(response.images)} came",
            evidence,
            work=work,
        )
    try:
        delivered = await asyncio.to_thread(_decode_all, response.images, request)
    except ImageRejected as exc:
        return failed(exc.code, exc.reason, evidence, work=work)
    try:
        encoded = await reference.generate(request)
    except EngineInputError as exc:
        return failed("bad_request", f"the reference cannot run this request: {exc}", evidence)
    references = await asyncio.to_thread(_decode_all, encoded, request)
    per_image = await asyncio.to_thread(
        lambda: [
            compare(mine.pixels, theirs.pixels, spec)
            for mine, theirs in zip(delivered, references, strict=True)
        ]
    )
    evidence["images"] = per_image
    quality = min(item["score"] for item in per_image)
    if quality < 1.0:
        worst = min(range(len(per_image)), key=lambda index: per_image[index]["score"])
        item = per_image[worst]
        reason = (
            f"image {worst} differs from the reference: similarity {item['similarity']:.3f} < "
            f"{spec.image_similarity} (PSNR {item['psnr_db']:.1f} dB, perceptual "
            f"{item['perceptual']:.3f})"
        )
        outcome = failed("image_dissimilar", reason, evidence, work=work)
        outcome.quality = quality
        return outcome
    return passed(quality, evidence, work=work)


def _decode_all(images: list[bytes], request: ImageRequest) -> list[Decoded]:
    decoded: list[Decoded] = []
    for index, data in enumerate(images):
        try:
            decoded.append(decode_image(data, request.width, request.height, request.output_format))
        except ImageRejected as exc:
            raise ImageRejected(exc.code, f"image {index}: {exc.reason}") from None
    return decoded
