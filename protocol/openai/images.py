"""`/v1/images/generations` and `/v1/images/edits`.

Beyond OpenAI's fields, SN19 accepts a few diffusion parameters as extensions (send them with
the SDK's ``extra_body``): ``seed``, ``steps``, ``negative_prompt``, ``guidance_scale`` and, for
edits, ``strength``. Images come back as ``b64_json`` (PNG by default), or as URLs the gateway
serves for a while (``response_format: "url"``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.openai.chat import ModelName, Seed

MAX_PROMPT_CHARS = 32_000
MAX_IMAGES = 10

Size = Annotated[str, Meta(pattern=r"^(auto|[0-9]{1,5}x[0-9]{1,5})$")]
OutputFormat = Literal["png", "jpeg", "webp"]


class ImageGenerationRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    prompt: Annotated[str, Meta(min_length=1, max_length=MAX_PROMPT_CHARS)]
    model: ModelName | None = None
    n: Annotated[int, Meta(ge=1, le=MAX_IMAGES)] | None = None
    size: Size | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: OutputFormat | None = None
    output_compression: Annotated[int, Meta(ge=0, le=100)] | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    moderation: str | None = None
    user: Annotated[str, Meta(max_length=512)] | None = None
    # SN19 extensions.
    seed: Seed | None = None
    steps: Annotated[int, Meta(ge=1, le=200)] | None = None
    negative_prompt: Annotated[str, Meta(max_length=MAX_PROMPT_CHARS)] | None = None
    guidance_scale: Annotated[float, Meta(ge=0.0, le=30.0)] | None = None


class ImageEditFields(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The non-file fields of a multipart `/v1/images/edits` request, after form decoding."""

    prompt: Annotated[str, Meta(min_length=1, max_length=MAX_PROMPT_CHARS)]
    model: ModelName | None = None
    n: Annotated[int, Meta(ge=1, le=MAX_IMAGES)] | None = None
    size: Size | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: OutputFormat | None = None
    quality: str | None = None
    background: str | None = None
    input_fidelity: str | None = None
    user: Annotated[str, Meta(max_length=512)] | None = None
    seed: Seed | None = None
    steps: Annotated[int, Meta(ge=1, le=200)] | None = None
    negative_prompt: Annotated[str, Meta(max_length=MAX_PROMPT_CHARS)] | None = None
    guidance_scale: Annotated[float, Meta(ge=0.0, le=30.0)] | None = None
    strength: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None


class ImageData(msgspec.Struct, omit_defaults=True):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(msgspec.Struct, omit_defaults=True):
    created: int
    data: list[ImageData]
    output_format: OutputFormat | None = None
    size: str | None = None
