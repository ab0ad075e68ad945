"""`/v1/models`: the public task list, OpenAI-shaped, with pricing and limits as extras."""

from __future__ import annotations

from typing import Literal

import msgspec


class ModelPricing(msgspec.Struct):
    """Prices in credits (1 credit = 1 USD by default) per million tokens or per image step."""

    input_per_million_tokens: float
    output_per_million_tokens: float
    per_image_step: float


class Model(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"
    kind: str | None = None
    context_length: int | None = None
    pricing: ModelPricing | None = None


class ModelList(msgspec.Struct):
    data: list[Model]
    object: Literal["list"] = "list"
