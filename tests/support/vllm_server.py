"""A small HTTP server that speaks vLLM's OpenAI streaming format, backed by a real engine.

It answers ``/v1/chat/completions`` and ``/v1/completions`` (streaming only) the way
``vllm serve --return-tokens-as-token-ids`` does: one chunk per token with its logprob under
``"token_id:N"`` names, the ``bytes`` of the token's text, ``token_ids`` when the request asks
``return_token_ids``, a role chunk first for chat, a usage chunk, then ``[DONE]``. Behind it is a
``TransformersTextEngine`` (the tiny model), so forwarding tests compare against a genuine model.

It also answers ``/v1/images/generations``, ``/v1/images/edits`` and ``/v1/embeddings`` with
the real image and embedding engines when given them. ``mode`` switches on upstream faults:
``"no_token_ids"`` (plain token strings, as a server without ``return_tokens_as_token_ids``),
``"http_500"``, ``"no_done"`` (stream ends without ``[DONE]``), ``"inband_400"`` (a 200 stream
whose first event is a validation error with code 400, as vLLM streams errors it meets late).

Like vLLM, it refuses ``n >= 2`` at temperature 0 with HTTP 400 ("n must be 1 when using greedy
sampling"), the message vLLM's ``SamplingParams`` raises.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec
from aiohttp import web

from inference.base import (
    ChatTurn,
    ChoiceEnd,
    Constraint,
    EngineInputError,
    ImageRequest,
    TextRequest,
    TokenEvent,
    ToolCallText,
)


def _turn(message: dict[str, Any]) -> ChatTurn:
    calls = tuple(
        ToolCallText(name=call["function"]["name"], arguments=call["function"]["arguments"])
        for call in message.get("tool_calls") or ()
    )
    return ChatTurn(
        message["role"],
        message.get("content") or "",
        tool_calls=calls,
        tool_call_id=message.get("tool_call_id"),
    )


class VllmFormatServer:
    def __init__(
        self, text_engine: Any, image_engine: Any = None, embed_engine: Any = None
    ) -> None:
        self.text_engine = text_engine
        self.image_engine = image_engine
        self.embed_engine = embed_engine
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/images/generations", self.images)
        app.router.add_post("/v1/images/edits", self.images)
        app.router.add_post("/v1/embeddings", self.embeddings)
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- text -------------------------------------------------------------------------------------

    def _token_name(self, token_id: int, text: str) -> str:
        return text if self.mode == "no_token_ids" else f"token_id:{token_id}"

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        turns = tuple(_turn(m) for m in body["messages"])
        top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        # As vLLM: the chat template renders the tools; structured_outputs.grammar constrains.
        structured = body.get("structured_outputs") or {}
        constraint = Constraint(grammar=structured["grammar"]) if "grammar" in structured else None
        text_request = TextRequest(
            messages=turns,
            tools=tuple(body.get("tools") or ()),
            constraint=constraint,
            **self._common(body, top),
        )
        return await self._stream(request, body, text_request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        prompt = body["prompt"]
        top = int(body.get("logprobs") or 0)
        if isinstance(prompt, list):
            text_request = TextRequest(prompt_ids=tuple(prompt), **self._common(body, top))
        else:
            text_request = TextRequest(prompt=prompt, **self._common(body, top))
        return await self._stream(request, body, text_request, chat=False)

    @staticmethod
    def _common(body: dict[str, Any], top: int) -> dict[str, Any]:
        stop = body.get("stop") or ()
        return {
            "max_tokens": int(body.get("max_tokens") or 16),
            "temperature": float(body.get("temperature", 1.0)),
            "top_p": float(body.get("top_p", 1.0)),
            "n": int(body.get("n") or 1),
            "seed": body.get("seed"),
            "stop": (stop,) if isinstance(stop, str) else tuple(stop),
            "top_logprobs": top,
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], text_request: TextRequest, *, chat: bool
    ) -> web.StreamResponse:
        if self.mode == "http_500":
            return web.json_response(
                {"error": {"message": "engine dead", "type": "InternalServerError"}}, status=500
            )
        if text_request.n > 1 and text_request.temperature == 0:
            return _bad_request(f"n must be 1 when using greedy sampling, got {text_request.n}.")
        if self.mode == "inband_400":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            error = {"message": "max_tokens is too large", "type": "BadRequestError", "code": 400}
            await self._send(response, {"error": error})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        try:
            prompt_tokens = self.text_engine.count_prompt_tokens(text_request)
            events = self.text_engine.generate(text_request)
            first = await anext(events)
        except EngineInputError as exc:
            return _bad_request(str(exc))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "cmpl-test", "created": 0, "model": body.get("model", "tiny")}
        kind = "chat.completion.chunk" if chat else "text_completion"
        if chat:
            for index in range(text_request.n):
                await self._send(
                    response,
                    {
                        **base,
                        "object": kind,
                        "choices": [
                            {
                                "index": index,
                                "delta": {"role": "assistant", "content": ""},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ],
                    },
                )
        completion_tokens = 0
        event: Any = first
        while True:
            if isinstance(event, TokenEvent):
                completion_tokens += 1
                choice = self._token_choice(
                    event, text_request.top_logprobs, chat, bool(body.get("return_token_ids"))
                )
            else:
                assert isinstance(event, ChoiceEnd)
                choice = {
                    "index": event.choice,
                    "finish_reason": event.finish_reason,
                    "stop_reason": None,
                }
                if chat:
                    choice["delta"] = {"content": event.text}
                    choice["logprobs"] = None
                else:
                    choice["text"] = event.text
                    choice["logprobs"] = None
            await self._send(response, {**base, "object": kind, "choices": [choice]})
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            await self._send(response, {**base, "object": kind, "choices": [], "usage": usage})
        if self.mode != "no_done":
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _token_choice(
        self, event: TokenEvent, top: int, chat: bool, with_ids: bool
    ) -> dict[str, Any]:
        name = self._token_name(event.token_id, event.token)
        choice: dict[str, Any] = {"index": event.choice, "finish_reason": None}
        if with_ids and self.mode != "no_token_ids":
            choice["token_ids"] = [event.token_id]
        if chat:
            choice["delta"] = {"content": event.text}
            choice["logprobs"] = {
                "content": [
                    {
                        "token": name,
                        "logprob": event.logprob,
                        "bytes": list(event.token.encode()),
                        "top_logprobs": [
                            {
                                "token": self._token_name(alt.token_id, alt.token),
                                "logprob": alt.logprob,
                                "bytes": list(alt.token.encode()),
                            }
                            for alt in event.top
                        ],
                    }
                ]
            }
        else:
            choice["text"] = event.text
            choice["logprobs"] = {
                "text_offset": [0],
                "token_logprobs": [event.logprob],
                "tokens": [name],
                "top_logprobs": [
                    {self._token_name(alt.token_id, alt.token): alt.logprob for alt in event.top}
                ]
                if top
                else None,
            }
        return choice

    @staticmethod
    async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
        await response.write(b"data: " + msgspec.json.encode(payload) + b"\n\n")

    # -- images and embeddings --------------------------------------------------------------------

    async def images(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        width, height = (int(side) for side in body["size"].split("x"))

        def data(name: str) -> bytes | None:
            value = body.get(name)
            if value is None:
                return None
            try:
                return base64.b64decode(value.split(",", 1)[1])
            except (IndexError, binascii.Error):
                return None

        image_request = ImageRequest(
            prompt=body["prompt"],
            width=width,
            height=height,
            steps=int(body["num_inference_steps"]),
            seed=int(body["seed"]),
            n=int(body.get("n", 1)),
            negative_prompt=body.get("negative_prompt", ""),
            guidance_scale=float(body.get("guidance_scale", 7.5)),
            init_image=data("image"),
            mask_image=data("mask"),
            strength=float(body.get("strength", 0.75)),
            output_format=body.get("output_format", "png"),
        )
        images = await self.image_engine.generate(image_request)
        return web.json_response(
            {
                "created": 0,
                "data": [{"b64_json": base64.b64encode(image).decode()} for image in images],
            }
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        inputs = body["input"]
        if isinstance(inputs, str):
            inputs = [inputs]
        result = await self.embed_engine.embed(inputs, dimensions=body.get("dimensions"))
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": vector}
                    for i, vector in enumerate(result.vectors)
                ],
                "model": body.get("model"),
                "usage": {
                    "prompt_tokens": result.prompt_tokens,
                    "total_tokens": result.prompt_tokens,
                },
            }
        )


def _bad_request(message: str) -> web.Response:
    """vLLM's answer to a request it refuses (its ``ErrorResponse``, HTTP 400)."""
    return web.json_response(
        {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}},
        status=400,
    )
