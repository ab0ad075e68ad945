"""The OpenAPI document covers every route the gateway serves, and is served itself."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from gateway import create_app
from gateway.openapi.document import document
from tests.support.fake_miner import Canned
from tests.support.gateway import gateway, settings_for

AUTOMATIC = {"OPTIONS", "HEAD"}  # Litestar answers these itself on every path


def shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def served_operations(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(settings_for(tmp_path))
    return {
        (method.lower(), shape(route.path))
        for route in app.routes
        for method in route.methods
        if method not in AUTOMATIC
    }


def test_every_served_route_is_documented(tmp_path: Path) -> None:
    documented = {
        (method, shape(path)) for path, methods in document()["paths"].items() for method in methods
    }
    served = served_operations(tmp_path)
    assert served - documented == set(), "routes served without an OpenAPI operation"
    assert documented - served == set(), "documented operations nobody serves"
    assert len(served) >= 16


def test_request_and_response_schemas_come_from_the_wire_types() -> None:
    doc = document()
    components = doc["components"]["schemas"]
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    request = components["ChatCompletionRequest"]
    assert request["required"] == ["model", "messages"]
    assert request["properties"]["n"]["anyOf"][0]["maximum"] == 16
    edits = doc["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]
    form = edits["multipart/form-data"]["schema"]
    assert form["properties"]["image"] == {"type": "string", "format": "binary"}
    assert "prompt" in form["required"] and "image" in form["required"]
    usage = doc["paths"]["/v1/billing/usage"]["get"]["parameters"]
    assert {p["name"] for p in usage} == {"start", "end", "key_id", "model", "limit", "cursor"}
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            assert "200" in operation["responses"], (method, path)
            error = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}


async def test_served_at_openapi_json_and_docs(tmp_path: Path) -> None:
    async with gateway(tmp_path, lambda url, path, body: Canned(500, b"")) as harness:
        client = harness.client
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        served = msgspec.json.decode(response.content)
        assert served["openapi"] == "3.1.0" and served == msgspec.json.decode(
            msgspec.json.encode(document())
        )
        page = await client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/v1/chat/completions" in page.text and "/openapi.json" in page.text
