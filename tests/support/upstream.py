"""A real HTTP server that answers chosen JSON bodies: an upstream for forward engines when the
answer's size or shape matters more than the model behind it (multi-megabyte images, big
embedding batches, refusals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

Answer = Callable[[dict[str, Any]], tuple[int, bytes]]


class JsonUpstream:
    """``POST /v1/<path>`` answers what ``answers[path](body)`` returns: (status, JSON bytes),
    sent with its Content-Length as vLLM's server does, or chunked without one when ``chunked``.
    ``requests`` records every body received. ``GET /v1/models`` (what forward engines probe
    for health) answers a one-model list and counts in ``model_lists``."""

    def __init__(self, answers: dict[str, Answer], *, port: int = 0) -> None:
        self.answers = answers
        self.port = port
        self.chunked = False
        self.model_lists = 0
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = msgspec.json.decode(await request.read())
        self.requests.append(body)
        status, payload = self.answers[request.match_info["path"]](body)
        if not self.chunked:
            return web.Response(status=status, body=payload, content_type="application/json")
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(payload), 64 * 1024):
            await response.write(payload[start : start + 64 * 1024])
        await response.write_eof()
        return response

    async def _models(self, request: web.Request) -> web.Response:
        self.model_lists += 1
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/{path:.+}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{host}:{port}/v1"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
