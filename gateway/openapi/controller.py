"""``GET /openapi.json`` (the document, ``gateway.openapi.document``) and ``GET /docs`` (the
same, as a plain page listing the operations); both unauthenticated."""

from __future__ import annotations

import functools
import html

from litestar import get
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from gateway.http import json_response
from gateway.openapi.document import DOCS_PATH, OPENAPI_PATH, document, document_bytes


@get(OPENAPI_PATH)
async def openapi_json() -> ASGIApp:
    return json_response(document_bytes())


@functools.cache
def docs_page() -> bytes:
    rows = []
    for path, methods in document()["paths"].items():
        for method, operation in methods.items():
            auth = "API key" if operation["security"] else "none"
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(operation['summary'])}</td><td>{auth}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>SN19 gateway API</title>"
        "<h1>SN19 gateway API</h1><p>OpenAI-compatible. Request and response schemas: "
        f'<a href="{OPENAPI_PATH}">{OPENAPI_PATH}</a> (OpenAPI 3.1).</p>'
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Auth</th></tr>"
        + "".join(rows)
        + "</table></html>"
    ).encode()


@get(DOCS_PATH)
async def docs() -> ASGIApp:
    return ASGIResponse(body=docs_page(), media_type="text/html; charset=utf-8", status_code=200)


OPENAPI_HANDLERS = (openapi_json, docs)
