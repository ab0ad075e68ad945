"""The gateway's OpenAPI 3.1 document, generated from the msgspec types its handlers decode and
encode (``msgspec.json.schema_components``), so the document cannot drift from the wire.

``OPERATIONS`` names every public route once: its method and path (the handlers' own
constants), the request body (a JSON Struct, or a multipart form: a Struct of the text fields
plus the file fields), the query Struct, the 200 body (JSON Struct, SSE chunk Struct, or plain
text) and whether it takes an API key. Every error is the ``ErrorResponse`` envelope.
``document()`` builds the dict once per process, on the first request for it; a test checks
that every route the app serves is here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from billing.schemas import (
    BalanceResponse,
    CheckoutResponse,
    UsageQuery,
    UsageResponse,
    WebhookResponse,
)
from gateway.billing.controller import BALANCE, CHECKOUT, CHECKOUT_REQUEST, USAGE, WEBHOOK
from gateway.chat.controller import ROUTE as CHAT
from gateway.chat.service import REQUEST as CHAT_REQUEST
from gateway.completions.controller import ROUTE as COMPLETIONS
from gateway.completions.service import REQUEST as COMPLETION_REQUEST
from gateway.embeddings.controller import ROUTE as EMBEDDINGS
from gateway.embeddings.service import REQUEST as EMBEDDING_REQUEST
from gateway.health import Health
from gateway.images.controller import EDITS, GENERATIONS
from gateway.images.files import FILES_PREFIX, NAME_PATTERN
from gateway.images.service import GENERATION_REQUEST
from gateway.requests.controller import RequestProvenance
from gateway.responses.controller import REQUEST as RESPONSES_REQUEST
from gateway.responses.controller import ROUTE as RESPONSES
from protocol.openai.chat import ChatCompletion, ChatCompletionChunk
from protocol.openai.common import ErrorResponse
from protocol.openai.completions import Completion, CompletionChunk
from protocol.openai.embeddings import EmbeddingList
from protocol.openai.images import ImageEditFields, ImagesResponse
from protocol.openai.models import Model, ModelList
from protocol.openai.responses import Response, StreamEvent

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
REF = "#/components/schemas/{name}"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form: "/v1/models/{model}"
    summary: str
    tag: str
    auth: bool = True
    body: Any = None  # a JSON request Struct
    form: Any = None  # a multipart request: the Struct of its text fields...
    files: tuple[str, ...] = ()  # ...and its file fields (the first is required)
    optional_files: tuple[str, ...] = ()
    query: Any = None  # a Struct of query parameters
    path_params: tuple[str, ...] = ()
    path_pattern: str | None = None  # what the path parameters must match, when they must
    response: Any = None  # the 200 JSON body
    stream: Any = None  # the SSE chunk, when the body asks "stream": true
    stream_text: str = ""  # how the stream is framed, when not `data:` chunks then [DONE]
    media: str = "application/json"  # the 200 body's type when it is not a Struct
    raw_body: bool = False  # any bytes (the Stripe webhook: its signature covers them)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        CHAT,
        "Create a chat completion",
        "chat",
        body=CHAT_REQUEST.type,
        response=ChatCompletion,
        stream=ChatCompletionChunk,
    ),
    Operation(
        "post",
        RESPONSES,
        "Create a response (stateless)",
        "responses",
        body=RESPONSES_REQUEST.type,
        response=Response,
        stream=StreamEvent,
        stream_text="`event: <type>` and `data: <event>` per Responses stream event (each with "
        "its `sequence_number`), ending with `response.completed` or `response.incomplete`",
    ),
    Operation(
        "post",
        COMPLETIONS,
        "Create a (legacy) text completion",
        "completions",
        body=COMPLETION_REQUEST.type,
        response=Completion,
        stream=CompletionChunk,
    ),
    Operation(
        "post",
        EMBEDDINGS,
        "Create embeddings",
        "embeddings",
        body=EMBEDDING_REQUEST.type,
        response=EmbeddingList,
    ),
    Operation(
        "post",
        GENERATIONS,
        "Generate images",
        "images",
        body=GENERATION_REQUEST.type,
        response=ImagesResponse,
    ),
    Operation(
        "post",
        EDITS,
        "Edit an image (multipart upload)",
        "images",
        form=ImageEditFields,
        files=("image",),
        optional_files=("mask",),
        response=ImagesResponse,
    ),
    Operation(
        "get",
        FILES_PREFIX + "{name}",
        "An image answered as a URL (no API key: the URL is the credential; it expires)",
        "images",
        auth=False,
        path_params=("name",),
        path_pattern=NAME_PATTERN,
        media="image/png",
    ),
    Operation("get", "/v1/models", "List the models", "models", response=ModelList),
    Operation(
        "get",
        "/v1/models/{model}",
        "Retrieve a model",
        "models",
        path_params=("model",),
        response=Model,
    ),
    Operation(
        "post",
        CHECKOUT,
        "Buy credits (a Stripe Checkout Session)",
        "billing",
        body=CHECKOUT_REQUEST.type,
        response=CheckoutResponse,
    ),
    Operation(
        "post",
        WEBHOOK,
        "Stripe webhook (authenticated by its Stripe-Signature header)",
        "billing",
        auth=False,
        raw_body=True,
        response=WebhookResponse,
    ),
    Operation(
        "get",
        USAGE,
        "Daily usage of the key's account",
        "billing",
        query=UsageQuery,
        response=UsageResponse,
    ),
    Operation("get", BALANCE, "Balance of the key's account", "billing", response=BalanceResponse),
    Operation(
        "get",
        "/v1/requests/{request_id}",
        "Who served one of the account's requests, with the miner's receipt",
        "requests",
        path_params=("request_id",),
        response=RequestProvenance,
    ),
    Operation(
        "get",
        "/healthz",
        "Liveness (and whether Redis answers)",
        "ops",
        auth=False,
        response=Health,
    ),
    Operation("get", "/metrics", "Prometheus metrics", "ops", auth=False, media="text/plain"),
    Operation("get", OPENAPI_PATH, "This document", "ops", auth=False, media="application/json"),
    Operation("get", DOCS_PATH, "This document as a page", "ops", auth=False, media="text/html"),
)


def _content(media: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    return {media: {"schema": schema if schema is not None else {}}}


def _error_responses(auth: bool) -> dict[str, Any]:
    error = _content("application/json", {"$ref": REF.format(name=ErrorResponse.__name__)})
    responses: dict[str, Any] = {
        "4XX": {
            "description": "The OpenAI error envelope; `code` names the error.",
            "content": error,
        },
        "5XX": {"description": "A miner or a dependency failed (retry).", "content": error},
    }
    if auth:
        responses["401"] = {"description": "Missing or invalid API key.", "content": error}
    return responses


def _form_schema(fields: dict[str, Any], files: tuple[str, ...], optional: tuple[str, ...]) -> Any:
    properties = {name: _given(schema) for name, schema in fields.get("properties", {}).items()}
    for name in (*files, *optional):
        properties[name] = {"type": "string", "format": "binary"}
    return {
        "type": "object",
        "properties": properties,
        "required": [*fields.get("required", []), *files],
        "additionalProperties": False,
    }


def _given(schema: dict[str, Any]) -> dict[str, Any]:
    """A text field's schema without its null branch: a query parameter or form field that is
    given is never null (leave it out instead)."""
    branches = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if "anyOf" not in schema:
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**branches[0], **rest} if len(branches) == 1 else {"anyOf": branches, **rest}


def _query_parameters(fields: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(fields.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _given(schema)}
        for name, schema in fields.get("properties", {}).items()
    ]


def _operation(op: Operation, schemas: dict[Any, Any], components: dict[str, Any]) -> Any:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.method + re.sub(r"[^a-z0-9]+", "_", op.path.lower()).rstrip("_"),
        "tags": [op.tag],
        "security": [{"apiKey": []}] if op.auth else [],
    }
    path_schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if op.path_pattern is not None:
        path_schema["pattern"] = op.path_pattern
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": path_schema}
        for name in op.path_params
    ]
    if op.query is not None:
        parameters += _query_parameters(components[op.query.__name__])
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": _content("application/json", schemas[op.body]),
        }
    elif op.form is not None:
        form = _form_schema(components[op.form.__name__], op.files, op.optional_files)
        out["requestBody"] = {"required": True, "content": _content("multipart/form-data", form)}
    elif op.raw_body:
        out["requestBody"] = {
            "required": True,
            "content": _content("application/json", {"type": "object"}),
        }
    ok: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        ok["content"] = _content("application/json", schemas[op.response])
    else:
        ok["content"] = _content(
            op.media, {"type": "string"} if op.media != "application/json" else {"type": "object"}
        )
    if op.stream is not None:
        ok["content"].update(
            _content(
                "text/event-stream",
                {
                    "type": "string",
                    "description": op.stream_text
                    or f"`data: <{op.stream.__name__}>` events, then `data: [DONE]`",
                },
            )
        )
    out["responses"] = {"200": ok, **_error_responses(op.auth)}
    return out


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once)."""
    types = [ErrorResponse]
    for op in OPERATIONS:
        types += [t for t in (op.body, op.form, op.query, op.response, op.stream) if t is not None]
    unique = list(dict.fromkeys(types))
    generated, components = msgspec.json.schema_components(unique, ref_template=REF)
    schemas = dict(zip(unique, generated, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SN19 validator gateway",
            "version": "1",
            "description": "OpenAI-compatible API served by a Bittensor subnet-19 validator.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


@functools.cache
def document_bytes() -> bytes:
    return msgspec.json.encode(document())
