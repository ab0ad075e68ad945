"""Engines that forward to an OpenAI-compatible inference server the miner already runs
(``vllm serve``, SGLang, llama.cpp's server), over one shared ``aiohttp`` session.

Options (catalog ``engine.options`` or a miner's override):

- ``base_url`` (required), e.g. ``http://127.0.0.1:8000/v1``;
- ``api_key`` (optional, sent as ``Authorization: Bearer``);
- ``model``: the upstream's model name (default: the catalog model);
- ``connect_timeout_s`` (10), ``read_timeout_s`` (60: the longest gap between bytes),
  ``timeout_s`` (600: a whole request);
- ``health_ttl_s`` (5): how long one health probe (``GET {base_url}/models``) is trusted;
- text only: ``tokenizer``, a local ``tokenizer.json`` used to estimate prompt tokens.

At temperature 0 a text request with ``n >= 2`` is sent with ``n: 1`` and its one choice copied
(vLLM refuses greedy ``n >= 2``; see ``inference.choices``). An upstream's refusal (HTTP 400,
404, 413, 422, or an in-stream error with code 400) is the request's fault
(``EngineInputError``), never the miner's.

Text streams with ``logprobs``, ``return_tokens_as_token_ids`` and ``return_token_ids`` (vLLM
extensions: the upstream must return token ids, see ``inference.forward_stream``). Prompt token
counts are an estimate that assumes Llama 3's chat layout (5 template tokens per message, 4 plus
the role for the reply header, one BOS): with ``tokenizer``, role and content are counted with
it; without one, as UTF-8 bytes, which bounds any byte-level BPE tokenizer from above.
``prompt_ids`` are exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import msgspec

from inference.base import (
    Constraint,
    EngineError,
    EngineInputError,
    TextEvent,
    TextRequest,
)
from inference.choices import copy_events, plan_choices
from inference.forward_stream import StreamAssembler
from inference.health import CachedProbe
from inference.requests import template_message
from protocol.catalog import EngineSpec, Task
from protocol.sse import SSEError, SSEParser

MAX_ERROR_BODY = 2000
MAX_RESPONSE = 256 * 1024 * 1024
# Llama-3 chat layout: <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> per message,
# the same header for the reply, one <|begin_of_text|>.
_CHAT_OVERHEAD_PER_MESSAGE = 5
_CHAT_OVERHEAD_REPLY = 4


_JSON = {"Content-Type": "application/json"}
_ENCODER = msgspec.json.Encoder()


def _json(body: dict[str, Any]) -> bytes:
    """The request body, encoded once with msgspec (aiohttp's ``json=`` goes through the
    standard library's encoder and a payload object per request)."""
    return _ENCODER.encode(body)


def _grammar_text(constraint: Constraint) -> str:
    from inference.grammars import grammar_text  # xgrammar only when a request needs it

    return grammar_text(constraint)


class _Upstream:
    """The shared HTTP plumbing: options, the session, JSON POSTs with clear errors."""

    def __init__(self, spec: EngineSpec) -> None:
        options = spec.options
        base_url = options.get("base_url")
        if not isinstance(base_url, str) or not base_url:
            raise EngineError("a forward engine needs the option base_url")
        self.base_url = base_url.rstrip("/")
        api_key = options.get("api_key")
        self.api_key = str(api_key) if api_key else None
        self.model = str(options.get("model") or spec.model)
        self.timeout = aiohttp.ClientTimeout(
            total=float(options.get("timeout_s", 600.0)),
            connect=float(options.get("connect_timeout_s", 10.0)),
            sock_read=float(options.get("read_timeout_s", 60.0)),
        )
        self._session: aiohttp.ClientSession | None = None
        self.health = CachedProbe(self._answers, ttl_s=float(options.get("health_ttl_s", 5.0)))

    async def _answers(self) -> bool:
        """``GET {base_url}/models`` answers 200 within a few seconds (vLLM, SGLang and
        llama.cpp's server all serve it; it costs the upstream nothing)."""
        if self._session is None:
            return False
        timeout = aiohttp.ClientTimeout(total=3.0, connect=2.0)
        async with self._session.get(f"{self.base_url}/models", timeout=timeout) as response:
            return response.status == 200

    async def start(self) -> None:
        if self._session is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers=headers,
                connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True),
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise EngineError("the engine is not started")
        return self._session

    async def post_json(self, path: str, body: dict[str, Any]) -> bytes:
        """The upstream's whole answer body (at most ``MAX_RESPONSE`` bytes, else an error)."""
        url = f"{self.base_url}{path}"
        try:
            async with self.session().post(url, data=_json(body), headers=_JSON) as response:
                await raise_for_status(response, url)
                declared = response.content_length
                if declared is not None and declared > MAX_RESPONSE:
                    raise EngineError(
                        f"upstream {url} announced {declared} bytes, more than the "
                        f"{MAX_RESPONSE} bytes a forward engine accepts"
                    )
                raw, complete = await read_at_most(response, MAX_RESPONSE)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineError(f"upstream {url} failed: {exc!r}") from exc
        if not complete:
            raise EngineError(
                f"upstream {url} answered more than the {MAX_RESPONSE} bytes a forward engine "
                "accepts"
            )
        return raw


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read the body until its end or ``limit`` bytes: (the bytes, whether that was the end).

    ``StreamReader.read(n)`` returns as soon as *some* bytes are buffered, so one call would
    truncate any body longer than what has arrived so far; this reads chunk by chunk."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False


async def raise_for_status(response: aiohttp.ClientResponse, url: str) -> None:
    if response.status == 200:
        return
    raw, _ = await read_at_most(response, MAX_ERROR_BODY)
    body = raw.decode("utf-8", "replace")
    if response.status in (400, 404, 413, 422):
        raise EngineInputError(f"upstream {url} refused the request ({response.status}): {body}")
    raise EngineError(f"upstream {url} answered {response.status}: {body}")


# ---------------------------------------------------------------------------------------------
# Text


class ForwardTextEngine:
    kind: Literal["chat"] = "chat"

    def __init__(self, spec: EngineSpec) -> None:
        self._upstream = _Upstream(spec)
        tokenizer_path = spec.options.get("tokenizer")
        self._tokenizer_path = str(tokenizer_path) if tokenizer_path else None
        self._tokenizer: Any = None

    @classmethod
    def from_spec(
        cls, spec: EngineSpec, task: Task, *, device: str | None = None
    ) -> ForwardTextEngine:
        del task, device
        return cls(spec)

    async def start(self) -> None:
        if self._tokenizer_path and self._tokenizer is None:
            from tokenizers import Tokenizer

            try:
                self._tokenizer = Tokenizer.from_file(self._tokenizer_path)
            except Exception as exc:  # tokenizers raises its own Exception type
                raise EngineError(f"cannot read tokenizer {self._tokenizer_path!r}: {exc}") from exc
        await self._upstream.start()

    async def close(self) -> None:
        await self._upstream.close()

    async def healthy(self) -> bool:
        return await self._upstream.health.healthy()

    def _count(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        return len(text.encode())

    def count_prompt_tokens(self, request: TextRequest) -> int:
        if request.prompt_ids is not None:
            return len(request.prompt_ids)
        if request.messages is not None:
            body = sum(
                self._count(turn.role) + self._count(turn.content) + _CHAT_OVERHEAD_PER_MESSAGE
                for turn in request.messages
            )
            return 1 + body + _CHAT_OVERHEAD_REPLY + self._count("assistant")
        return self._count(request.prompt or "") + 1

    def _body(self, request: TextRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self._upstream.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "n": request.n,
            "stream": True,
            "stream_options": {"include_usage": True},
            "return_tokens_as_token_ids": True,
            "return_token_ids": True,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.messages is not None:
            body["messages"] = [template_message(turn) for turn in request.messages]
            if request.tools:
                # The server's chat template renders the tools into the prompt, as the
                # checker's does; calls are read from the completion's text, so the server
                # must not parse them (tool_choice "none").
                body["tools"] = list(request.tools)
                body["tool_choice"] = "none"
            if request.constraint is not None:
                # vLLM's structured outputs (>= 0.12): the same xgrammar grammar the
                # transformers engine and the checker build.
                body["structured_outputs"] = {"grammar": _grammar_text(request.constraint)}
            body["logprobs"] = True
            if request.top_logprobs:
                body["top_logprobs"] = request.top_logprobs
            return "/chat/completions", body
        if request.prompt_ids is not None:
            body["prompt"] = list(request.prompt_ids)
        else:
            body["prompt"] = request.prompt or ""
        body["logprobs"] = request.top_logprobs
        return "/completions", body

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        run, copies = plan_choices(request)
        path, body = self._body(run)
        url = f"{self._upstream.base_url}{path}"
        assembler = StreamAssembler(
            chat=run.messages is not None, n=run.n, top_logprobs=run.top_logprobs
        )
        parser = SSEParser(max_line=4 * 1024 * 1024)
        try:
            async with self._upstream.session().post(
                url, data=_json(body), headers=_JSON
            ) as response:
                await raise_for_status(response, url)
                async for data in response.content.iter_any():
                    for event in parser.feed(data):
                        if event.data is None:
                            continue
                        for item in copy_events(assembler.feed(event.data), copies):
                            yield item
                        if assembler.done:
                            return
                for event in parser.close():
                    if event.data is not None:
                        for item in copy_events(assembler.feed(event.data), copies):
                            yield item
        except SSEError as exc:
            raise EngineError(f"upstream {url} sent a malformed stream: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineError(f"upstream {url} failed: {exc!r}") from exc
        if not assembler.done:
            raise EngineError(f"upstream {url} ended the stream without [DONE]")


# ---------------------------------------------------------------------------------------------
# Images
