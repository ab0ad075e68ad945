"""Chat and completions over real HTTP: streams, full responses, limits, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from inference.base import EngineError, EngineInputError, TextEvent, TextRequest
from inference.instant import InstantTextEngine
from protocol.miner import MinerChatChunk, MinerCompletionChunk
from tests.integration.miner_server.conftest import CHAT_TASK, start_instant_miner
from tests.support.miner import SignedClient, sse_data

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
SERVERS = pytest.mark.parametrize("server", ["uvicorn", "granian"])


def chat_body(**fields) -> dict:
    return {"model": CHAT_TASK, "messages": [{"role": "user", "content": "Hello"}], **fields}


async def read_chat_stream(response) -> list[MinerChatChunk]:
    assert response.status == 200, await response.text()
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_data(await response.read())
    assert events[-1] == b"[DONE]"
    return [msgspec.json.decode(event, type=MinerChatChunk) for event in events[:-1]]


async def test_chat_stream_chunks_are_strict_miner_chunks(client: SignedClient) -> None:
    body = chat_body(stream=True, max_tokens=8, n=2, stream_options={"include_usage": True})
    async with client.post(CHAT, body) as response:
        chunks = await read_chat_stream(response)
    *content, last = chunks
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 16
    assert last.usage.total_tokens == last.usage.prompt_tokens + 16
    assert len({chunk.id for chunk in chunks}) == 1
    for index in (0, 1):
        mine = [choice for chunk in content for choice in chunk.choices if choice.index == index]
        assert mine[0].delta.role == "assistant"
        assert all(choice.delta.role is None for choice in mine[1:])
        assert [choice.finish_reason for choice in mine][-1] == "length"
        assert all(choice.finish_reason is None for choice in mine[:-1])
        ids = [token for choice in mine for token in choice.token_ids]
        logprobs = [entry for choice in mine for entry in choice.logprobs.content]
        assert len(ids) == len(logprobs) == 8
        assert ids == [0, 1, 2, 3, 4, 5, 6, 7]
        assert "".join(choice.delta.content or "" for choice in mine) == "".join(
            entry.token for entry in logprobs
        )


async def test_chat_non_stream_has_logprobs_token_ids_and_usage(client: SignedClient) -> None:
    async with client.post(CHAT, chat_body(max_completion_tokens=5, max_tokens=9)) as response:
        assert response.status == 200
        payload = await response.json()
    assert payload["object"] == "chat.completion"
    (choice,) = payload["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello from an instant miner",
        "refusal": None,
    }
    assert choice["finish_reason"] == "length"
    assert choice["token_ids"] == [0, 1, 2, 3, 4]
    assert [entry["token"] for entry in choice["logprobs"]["content"]] == [
        "Hello",
        " from",
        " an",
        " instant",
        " miner",
    ]
    assert choice["logprobs"]["content"][1]["bytes"] == list(b" from")
    assert payload["usage"]["completion_tokens"] == 5


async def test_return_tokens_as_token_ids(client: SignedClient) -> None:
    body = chat_body(stream=True, max_tokens=3, return_tokens_as_token_ids=True)
    async with client.post(CHAT, body) as response:
        chunks = await read_chat_stream(response)
    tokens = [
        entry.token
        for chunk in chunks
        for choice in chunk.choices
        for entry in choice.logprobs.content
    ]
    assert tokens == ["token_id:0", "token_id:1", "token_id:2"]


async def test_completions_stream_and_full(client: SignedClient) -> None:
    body = {"model": CHAT_TASK, "prompt": "Once", "max_tokens": 4, "logprobs": 2, "stream": True}
    async with client.post(COMPLETIONS, body) as response:
        assert response.status == 200
        events = sse_data(await response.read())
    assert events[-1] == b"[DONE]"
    chunks = [msgspec.json.decode(event, type=MinerCompletionChunk) for event in events[:-1]]
    text = "".join(choice.text for chunk in chunks for choice in chunk.choices)
    assert text == "Hello from an instant"
    offsets = [
        o for chunk in chunks for choice in chunk.choices for o in choice.logprobs.text_offset
    ]
    assert offsets == [0, 5, 10, 13]

    body.pop("stream")
    async with client.post(COMPLETIONS, body) as response:
        payload = await response.json()
    (choice,) = payload["choices"]
    assert payload["object"] == "text_completion"
    assert choice["text"] == "Hello from an instant"
    assert choice["token_ids"] == [0, 1, 2, 3]
    assert choice["logprobs"]["tokens"] == ["Hello", " from", " an", " instant"]
    assert choice["logprobs"]["text_offset"] == [0, 5, 10, 13]
    assert len(choice["logprobs"]["top_logprobs"]) == 4


async def test_completions_default_max_tokens_is_16(client: SignedClient) -> None:
    async with client.post(COMPLETIONS, {"model": CHAT_TASK, "prompt": [1, 2, 3]}) as response:
        payload = await response.json()
    assert len(payload["choices"][0]["token_ids"]) == 16


async def test_same_seed_gives_same_token_ids(client: SignedClient) -> None:
    outputs = []
    for _ in range(2):
        async with client.post(CHAT, chat_body(seed=7, max_tokens=6, temperature=0.8)) as response:
            outputs.append((await response.json())["choices"][0]["token_ids"])
    assert outputs[0] == outputs[1]


async def test_unknown_model_and_bad_field(client: SignedClient) -> None:
    async with client.post(CHAT, chat_body(model="gpt-4o")) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "model_not_found"
    async with client.post(CHAT, chat_body(temperature=3)) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "temperature"
    async with client.post(CHAT, chat_body(tools=[{"type": "function"}])) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "tools[0].function"


class SlowEngine(InstantTextEngine):
    """Instant tokens with a delay each; records when its generator is closed."""

    def __init__(self, delay_s: float = 0.05, length: int = 40) -> None:
        super().__init__(length=length, delay_s=delay_s)
        self.closed = asyncio.Event()
        self.produced = 0

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        try:
            async for event in super().generate(request):
                self.produced += 1
                yield event
        finally:
            self.closed.set()


@SERVERS
async def test_concurrency_limit_429_then_released(
    server, wallet_root: Path, validator, miner_hotkey
) -> None:
    engine = SlowEngine(delay_s=0.02, length=10)
    started = await start_instant_miner(
        wallet_root, engine, server, task={CHAT_TASK: {"concurrency": 1}}
    )
    async with started as url, aiohttp.ClientSession() as session:
        client = SignedClient(session, url, validator.hotkey, miner_hotkey)
        async with client.post(CHAT, chat_body(stream=True, max_tokens=10)) as first:
            assert first.status == 200
            async with client.post(CHAT, chat_body(max_tokens=1)) as second:
                assert second.status == 429
                assert second.headers["Retry-After"] == "1"
                error = (await second.json())["error"]
                assert error["code"] == "concurrency_limit"
            await first.read()
        async with client.post(CHAT, chat_body(max_tokens=1)) as third:
            assert third.status == 200


@SERVERS
async def test_client_disconnect_stops_generation(
    server, wallet_root: Path, validator, miner_hotkey
) -> None:
    engine = SlowEngine(delay_s=0.05, length=400)
    started = await start_instant_miner(
        wallet_root, engine, server, task={CHAT_TASK: {"concurrency": 1}}
    )
    async with started as url, aiohttp.ClientSession() as session:
        client = SignedClient(session, url, validator.hotkey, miner_hotkey)
        response = await client.post(CHAT, chat_body(stream=True, max_tokens=400))
        assert response.status == 200
        await response.content.readuntil(b"\n\n")
        response.close()
        await asyncio.wait_for(engine.closed.wait(), 5)
        assert engine.produced < 100
        # the slot came back
        async with client.post(CHAT, chat_body(max_tokens=1)) as again:
            assert again.status == 200


@SERVERS
async def test_non_stream_disconnect_stops_generation(
    server, wallet_root: Path, validator, miner_hotkey
) -> None:
    engine = SlowEngine(delay_s=0.05, length=400)
    started = await start_instant_miner(wallet_root, engine, server)
    async with started as url, aiohttp.ClientSession() as session:
        client = SignedClient(session, url, validator.hotkey, miner_hotkey)
        with pytest.raises(asyncio.TimeoutError):  # gives up while the miner generates
            await asyncio.wait_for(client.post(CHAT, chat_body(max_tokens=400)), 0.3)
        await asyncio.wait_for(engine.closed.wait(), 5)
        assert engine.produced < 100


class FailingEngine(InstantTextEngine):
    def __init__(self, fail_after: int, error: Exception) -> None:
        super().__init__(length=10)
        self.fail_after = fail_after
        self.error = error

    async def generate(self, request: TextRequest) -> AsyncIterator[TextEvent]:
        count = 0
        async for event in super().generate(request):
            if count == self.fail_after:
                raise self.error
            count += 1
            yield event
            await asyncio.sleep(0.01)


@SERVERS
async def test_engine_error_mid_stream_is_an_error_event_without_done(
    server, wallet_root: Path, validator, miner_hotkey
) -> None:
    started = await start_instant_miner(
        wallet_root, FailingEngine(3, EngineError("gpu fell off")), server
    )
    async with started as url, aiohttp.ClientSession() as session:
        client = SignedClient(session, url, validator.hotkey, miner_hotkey)
        async with client.post(CHAT, chat_body(stream=True, max_tokens=10)) as response:
            assert response.status == 200
            events = sse_data(await response.read())
    assert b"[DONE]" not in events
    error = msgspec.json.decode(events[-1])["error"]
    assert error["code"] == "engine_error" and error["message"] == "gpu fell off"
    tokens = [msgspec.json.decode(event, type=MinerChatChunk) for event in events[:-1]]
    assert sum(len(chunk.choices[0].token_ids) for chunk in tokens) == 3


@SERVERS
async def test_engine_error_before_first_token_is_an_http_error(
    server, wallet_root: Path, validator, miner_hotkey
) -> None:
    engine = FailingEngine(0, EngineInputError("prompt longer than the context"))
    started = await start_instant_miner(wallet_root, engine, server)
    async with started as url, aiohttp.ClientSession() as session:
        client = SignedClient(session, url, validator.hotkey, miner_hotkey)
        for stream in (True, False):
            async with client.post(CHAT, chat_body(stream=stream)) as response:
                assert response.status == 400
                error = (await response.json())["error"]
                assert error["message"] == "prompt longer than the context"
