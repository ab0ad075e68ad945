"""`GET /v1/models` and `GET /v1/models/{id}`: the enabled catalog tasks, OpenAI-shaped, with
kind, context length and prices (credits per million tokens / per image step) as extras."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.types import ASGIApp

from core.errors import ModelNotFound
from gateway.context import begin
from gateway.events import ENCODER
from gateway.http import json_response
from gateway.state import Gateway
from protocol.catalog import Catalog, Task
from protocol.openai.models import Model, ModelList, ModelPricing

MICRO = 1_000_000


def model_of(task: Task) -> Model:
    context = None
    if task.text is not None:
        context = task.text.context_length
    elif task.embedding is not None:
        context = task.embedding.max_input_tokens
    return Model(
        id=task.id,
        created=task.created,
        owned_by=task.owned_by,
        kind=task.kind,
        context_length=context,
        pricing=ModelPricing(
            input_per_million_tokens=task.price.input_per_million / MICRO,
            output_per_million_tokens=task.price.output_per_million / MICRO,
            per_image_step=task.price.per_step / MICRO,
        ),
    )


def model_list(catalog: Catalog) -> ModelList:
    return ModelList(data=[model_of(task) for task in catalog.enabled()])


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any], gateway: Gateway) -> ASGIApp:
    await begin(request, gateway, "/v1/models")
    return json_response(ENCODER.encode(model_list(gateway.catalog)))


@get("/v1/models/{model_id:path}")
async def retrieve_model(
    request: Request[Any, Any, Any], gateway: Gateway, model_id: str
) -> ASGIApp:
    ctx = await begin(request, gateway, "/v1/models/{id}")
    name = model_id.lstrip("/")
    task = gateway.catalog.get(name)
    if task is None:
        raise ModelNotFound(f"The model '{name[:128]}' does not exist.", param="model")
    ctx.model = task.id
    return json_response(ENCODER.encode(model_of(task)))
