"""Forwarding engines for images and embeddings: the upstream's ``/images/generations``,
``/images/edits`` and ``/embeddings`` (options and the shared session as in
``inference.forward``)."""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from inference.base import EmbeddingResult, EngineError, EngineInputError, ImageRequest
from inference.forward import MAX_RESPONSE, _Upstream
from protocol.catalog import EngineSpec, Task


class _ImageItem(msgspec.Struct):
    b64_json: Annotated[str, Meta(max_length=MAX_RESPONSE)] | None = None


class _ImagesResponse(msgspec.Struct):
    data: Annotated[list[_ImageItem], Meta(max_length=64)]


class ForwardImageEngine:
    """``POST {base_url}/images/generations`` (JSON, ``response_format: b64_json``) with the
    non-OpenAI fields ``seed``, ``num_inference_steps``, ``guidance_scale``,
    ``negative_prompt``; edits ``POST {base_url}/images/edits`` as JSON with the image (and
    mask) as base64 data URLs plus ``strength``. Each returned image is checked to decode at the
    requested size and re-encoded if its format differs from the one asked for."""

    kind: Literal["image"] = "image"

    def __init__(self, spec: EngineSpec, *, supports_inpainting: bool) -> None:
        self._upstream = _Upstream(spec)
        self.supports_inpainting = supports_inpainting

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> ForwardImageEngine:
        del device
        inpainting = bool(
            spec.options.get("inpainting", task.image.inpainting if task.image else False)
        )
        return cls(spec, supports_inpainting=inpainting)

    async def start(self) -> None:
        await self._upstream.start()

    async def close(self) -> None:
        await self._upstream.close()

    async def healthy(self) -> bool:
        return await self._upstream.health.healthy()

    async def generate(self, request: ImageRequest) -> list[bytes]:
        body: dict[str, Any] = {
            "model": self._upstream.model,
            "prompt": request.prompt,
            "n": request.n,
            "size": f"{request.width}x{request.height}",
            "response_format": "b64_json",
            "output_format": request.output_format,
            "seed": request.seed,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance_scale,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        path = "/images/generations"
        if request.init_image is not None:
            path = "/images/edits"
            body["image"] = _data_url(request.init_image)
            body["strength"] = request.strength
            if request.mask_image is not None:
                if not self.supports_inpainting:
                    raise EngineInputError("this model does not support inpainting")
                body["mask"] = _data_url(request.mask_image)
        elif request.mask_image is not None:
            raise EngineInputError("inpainting needs an image as well as a mask")
        raw = await self._upstream.post_json(path, body)
        try:
            response = msgspec.json.decode(raw, type=_ImagesResponse)
        except msgspec.DecodeError as exc:
            raise EngineError(
                f"malformed images response from the upstream server: {exc}"
            ) from None
        if len(response.data) != request.n:
            raise EngineError(
                f"the upstream server returned {len(response.data)} images, not {request.n}"
            )
        images: list[bytes] = []
        for item in response.data:
            if item.b64_json is None:
                raise EngineError("the upstream server returned an image without b64_json")
            try:
                data = base64.b64decode(item.b64_json, validate=True)
            except ValueError:
                raise EngineError("the upstream server returned invalid base64") from None
            images.append(_conform(data, (request.width, request.height), request.output_format))
        return images


def _data_url(data: bytes) -> str:
    kind = (
        "png" if data.startswith(b"\x89PNG") else "jpeg" if data.startswith(b"\xff\xd8") else "webp"
    )
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


def _conform(data: bytes, size: tuple[int, int], output_format: str) -> bytes:
    from PIL import Image, UnidentifiedImageError

    from inference.diffusers_image import encode_image

    try:
        with Image.open(io.BytesIO(data)) as image:
            actual_format = (image.format or "").lower()
            if image.size != size:
                raise EngineError(f"the upstream server returned a {image.size} image, not {size}")
            if actual_format == output_format:
                return data
            return encode_image(image.convert("RGB"), size, output_format)
    except (UnidentifiedImageError, OSError) as exc:
        raise EngineError("the upstream server returned bytes that are not an image") from exc


# ---------------------------------------------------------------------------------------------
# Embeddings


class _EmbeddingItem(msgspec.Struct):
    index: Annotated[int, Meta(ge=0)]
    embedding: Annotated[list[float], Meta(max_length=65536)]


class _EmbeddingUsage(msgspec.Struct):
    prompt_tokens: Annotated[int, Meta(ge=0)] = 0


class _EmbeddingsResponse(msgspec.Struct):
    data: Annotated[list[_EmbeddingItem], Meta(max_length=4096)]
    usage: _EmbeddingUsage = msgspec.field(default_factory=_EmbeddingUsage)


class ForwardEmbeddingEngine:
    """``POST {base_url}/embeddings`` with ``encoding_format: float``. ``count_tokens`` is an
    estimate (see the module docstring); the result's ``prompt_tokens`` is the upstream's."""

    kind: Literal["embedding"] = "embedding"

    def __init__(self, spec: EngineSpec, *, dimensions: int) -> None:
        self._upstream = _Upstream(spec)
        self.dimensions = dimensions

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> ForwardEmbeddingEngine:
        del device
        dimensions = int(
            spec.options.get("dimensions", task.embedding.dimensions if task.embedding else 0)
        )
        if dimensions < 1:
            raise EngineError(
                "a forward embedding engine needs the embedding width (option dimensions)"
            )
        return cls(spec, dimensions=dimensions)

    async def start(self) -> None:
        await self._upstream.start()

    async def close(self) -> None:
        await self._upstream.close()

    async def healthy(self) -> bool:
        return await self._upstream.health.healthy()

    def count_tokens(self, inputs: list[str] | list[list[int]]) -> int:
        return sum(
            len(item.encode()) + 2 if isinstance(item, str) else len(item) + 2 for item in inputs
        )

    async def embed(
        self, inputs: list[str] | list[list[int]], *, dimensions: int | None = None
    ) -> EmbeddingResult:
        if not inputs:
            raise EngineInputError("input must not be empty")
        width = dimensions if dimensions is not None else self.dimensions
        if not 1 <= width <= self.dimensions:
            raise EngineInputError(f"dimensions must be within [1, {self.dimensions}], got {width}")
        body: dict[str, Any] = {
            "model": self._upstream.model,
            "input": inputs,
            "encoding_format": "float",
        }
        if dimensions is not None:
            body["dimensions"] = dimensions
        raw = await self._upstream.post_json("/embeddings", body)
        try:
            response = msgspec.json.decode(raw, type=_EmbeddingsResponse)
        except msgspec.DecodeError as exc:
            raise EngineError(
                f"malformed embeddings response from the upstream server: {exc}"
            ) from None
        items = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in items] != list(range(len(inputs))):
            raise EngineError("the upstream server's embeddings do not match the inputs one to one")
        vectors = [item.embedding for item in items]
        if any(len(vector) != width for vector in vectors):
            raise EngineError(f"the upstream server returned vectors that are not {width} wide")
        return EmbeddingResult(vectors=vectors, prompt_tokens=response.usage.prompt_tokens)
