"""Interface-only image and embedding engines: fast, deterministic, recording what they got."""

from __future__ import annotations

import io
import math
from typing import Literal

from inference.base import EmbeddingResult, EngineInputError, ImageRequest


class FakeImageEngine:
    kind: Literal["image"] = "image"

    def __init__(self, *, supports_inpainting: bool = True) -> None:
        self.supports_inpainting = supports_inpainting
        self.requests: list[ImageRequest] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def generate(self, request: ImageRequest) -> list[bytes]:
        from PIL import Image

        self.requests.append(request)
        if "forbidden" in request.prompt:
            raise EngineInputError("prompt refused by the engine")
        images = []
        for index in range(request.n):
            shade = (request.seed + index) % 256
            image = Image.new("RGB", (request.width, request.height), (shade, 0, 0))
            buffer = io.BytesIO()
            image.save(buffer, format=request.output_format.upper())
            images.append(buffer.getvalue())
        return images


class FakeEmbeddingEngine:
    kind: Literal["embedding"] = "embedding"

    def __init__(self, dimensions: int = 8) -> None:
        self.dimensions = dimensions
        self.calls: list[tuple[list[str] | list[list[int]], int | None]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def count_tokens(self, inputs: list[str] | list[list[int]]) -> int:
        return sum(len(item) for item in inputs)

    async def embed(
        self, inputs: list[str] | list[list[int]], *, dimensions: int | None = None
    ) -> EmbeddingResult:
        self.calls.append((inputs, dimensions))
        size = dimensions or self.dimensions
        vectors = []
        for item in inputs:
            raw = [float((len(item) * (i + 1)) % 7 + 1) for i in range(size)]
            norm = math.sqrt(sum(value * value for value in raw))
            vectors.append([value / norm for value in raw])
        return EmbeddingResult(vectors=vectors, prompt_tokens=self.count_tokens(inputs))
