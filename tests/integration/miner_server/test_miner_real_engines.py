"""The miner with the dev catalog's real tiny engines (built by the app from the catalog), over
real HTTP with real signatures. Each test needs its engine module from ``inference``."""

from __future__ import annotations

import base64
import importlib.util
import io
import math
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from miner_server import create_app
from protocol.miner import MinerChatChunk, MinerEmbeddingList, MinerImagesResponse
from tests.support.miner import SignedClient, miner_settings, serving, sse_data

pytestmark = pytest.mark.slow

CHAT, IMAGE, EMBED = "sn19-tiny-chat", "sn19-tiny-diffusion", "all-minilm-l6-v2"
ENGINE_MODULES = {
    CHAT: "inference.transformers_text",
    IMAGE: "inference.diffusers_image",
    EMBED: "inference.sentence_embed",
}


async def real_miner(
    task: str, wallet_root: Path, validator, miner_hotkey
) -> AsyncIterator[SignedClient]:
    if importlib.util.find_spec(ENGINE_MODULES[task]) is None:
        pytest.skip(f"{ENGINE_MODULES[task]} is not written yet")
    settings = miner_settings(wallet_root, tasks=[task], device="cpu")
    app = create_app(settings)
    async with serving(app, settings) as url, aiohttp.ClientSession() as session:
        yield SignedClient(session, url, validator.hotkey, miner_hotkey)


@pytest.fixture(scope="module")
async def chat_miner(wallet_root, validator, miner_hotkey):
    async for client in real_miner(CHAT, wallet_root, validator, miner_hotkey):
        yield client


@pytest.fixture(scope="module")
async def image_miner(wallet_root, validator, miner_hotkey):
    async for client in real_miner(IMAGE, wallet_root, validator, miner_hotkey):
        yield client


@pytest.fixture(scope="module")
async def embed_miner(wallet_root, validator, miner_hotkey):
    async for client in real_miner(EMBED, wallet_root, validator, miner_hotkey):
        yield client


async def stream_chat(client: SignedClient, **fields) -> list[MinerChatChunk]:
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "stream": True,
        "stream_options": {"include_usage": True},
        **fields,
    }
    async with client.post("/v1/chat/completions", body) as response:
        assert response.status == 200, await response.text()
        events = sse_data(await response.read())
    assert events[-1] == b"[DONE]"
    return [msgspec.json.decode(event, type=MinerChatChunk) for event in events[:-1]]


def token_ids(chunks: list[MinerChatChunk]) -> list[int]:
    return [
        token for chunk in chunks for choice in chunk.choices for token in choice.token_ids or []
    ]


async def test_real_chat_stream(chat_miner: SignedClient) -> None:
    chunks = await stream_chat(chat_miner, max_tokens=24, seed=5, temperature=0.8, top_logprobs=3)
    *content, usage = chunks
    entries = [
        entry for chunk in content for choice in chunk.choices for entry in choice.logprobs.content
    ]
    ids = token_ids(content)
    assert 0 < len(ids) == len(entries) <= 24
    assert usage.usage.completion_tokens == len(ids) and usage.usage.prompt_tokens > 0
    assert all(entry.logprob <= 0 and len(entry.top_logprobs) == 3 for entry in entries)
    assert content[0].choices[0].delta.role == "assistant"
    assert content[-1].choices[0].finish_reason in ("stop", "length")
    again = await stream_chat(chat_miner, max_tokens=24, seed=5, temperature=0.8, top_logprobs=3)
    assert token_ids(again[:-1]) == ids


async def test_real_chat_tokens_as_ids_and_completions(chat_miner: SignedClient) -> None:
    chunks = await stream_chat(chat_miner, max_tokens=8, seed=1, return_tokens_as_token_ids=True)
    entries = [
        entry
        for chunk in chunks[:-1]
        for choice in chunk.choices
        for entry in choice.logprobs.content
    ]
    assert [entry.token for entry in entries] == [
        f"token_id:{token}" for token in token_ids(chunks[:-1])
    ]
    body = {"model": CHAT, "prompt": "Once upon a time", "max_tokens": 8, "seed": 3, "logprobs": 2}
    async with chat_miner.post("/v1/completions", body) as response:
        assert response.status == 200
        payload = await response.json()
    choice = payload["choices"][0]
    assert len(choice["token_ids"]) == len(choice["logprobs"]["tokens"]) <= 8


async def test_real_image_generation_and_edit(image_miner: SignedClient) -> None:
    from PIL import Image

    body = {"model": IMAGE, "prompt": "a lighthouse at dusk", "steps": 2, "seed": 9}
    outputs = []
    for _ in range(2):
        async with image_miner.post("/v1/images/generations", body) as response:
            assert response.status == 200, await response.text()
            outputs.append(msgspec.json.decode(await response.read(), type=MinerImagesResponse))
    png = base64.b64decode(outputs[0].data[0].b64_json)
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert outputs[0].data[0].b64_json == outputs[1].data[0].b64_json  # same seed, same image
    edit = {
        "model": IMAGE,
        "prompt": "at night",
        "image": outputs[0].data[0].b64_json,
        "steps": 2,
        "seed": 9,
        "strength": 0.6,
    }
    async with image_miner.post("/v1/images/edits", edit) as response:
        assert response.status == 200, await response.text()
        msgspec.json.decode(await response.read(), type=MinerImagesResponse)


async def test_real_embeddings(embed_miner: SignedClient) -> None:
    body = {"model": EMBED, "input": ["hello world", "a completely different sentence"]}
    async with embed_miner.post("/v1/embeddings", body) as response:
        assert response.status == 200, await response.text()
        answer = msgspec.json.decode(await response.read(), type=MinerEmbeddingList)
    assert [len(item.embedding) for item in answer.data] == [384, 384]
    for item in answer.data:
        assert math.isclose(
            math.sqrt(sum(value * value for value in item.embedding)), 1.0, abs_tol=1e-3
        )
    assert answer.usage.prompt_tokens > 0
