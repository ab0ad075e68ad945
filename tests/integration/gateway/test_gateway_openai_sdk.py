"""The gateway through the official openai SDK, over real HTTP, against real miner servers."""

from __future__ import annotations

import base64
import io

import aiohttp
import numpy as np
import openai
import pytest
from PIL import Image

from tests.integration.gateway.conftest import CHAT, EMBED, IMAGE, Stack
from tests.support.miner_streams import png

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]


async def test_chat_non_stream(fast_stack: Stack) -> None:
    completion = await fast_stack.client.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert completion.id.startswith("chatcmpl-") and completion.model == CHAT
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("Hello from an instant miner.")
    assert choice.finish_reason == "stop" and choice.logprobs is None
    assert completion.usage.completion_tokens == 16
    assert completion.usage.prompt_tokens == 1 + 13 + (5 + 6 + 9) + (5 + 4 + 3)


async def test_chat_stream_with_usage_and_logprobs(fast_stack: Stack) -> None:
    stream = await fast_stack.client.chat.completions.create(
        model=CHAT,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        logprobs=True,
        top_logprobs=0,
        max_tokens=8,
        seed=3,
    )
    chunks = [chunk async for chunk in stream]
    assert len({chunk.id for chunk in chunks}) == 1
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    tokens = [
        e.token for c in chunks for ch in c.choices if ch.logprobs for e in ch.logprobs.content
    ]
    assert len(tokens) == 8
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text == "".join(tokens)
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["length"]


async def test_completions(fast_stack: Stack) -> None:
    completion = await fast_stack.client.completions.create(
        model=CHAT, prompt="Once upon", max_tokens=5, logprobs=1
    )
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from an instant miner"
    assert len(completion.choices[0].logprobs.tokens) == 5
    assert completion.usage.prompt_tokens == 1 + len("Once upon")


@pytest.mark.parametrize("encoding", ["base64", "float"])
async def test_embeddings(fast_stack: Stack, encoding: str) -> None:
    response = await fast_stack.client.embeddings.create(
        model=EMBED, input=["a cat", "a kitten", "stock prices"], encoding_format=encoding
    )
    raw = [item.embedding for item in response.data]
    if encoding == "base64":  # asked explicitly: the SDK leaves it to the caller to decode
        raw = [np.frombuffer(base64.b64decode(item), dtype="<f4") for item in raw]
    vectors = np.array(raw)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert response.usage.prompt_tokens == 4 + 4 + 4  # the model's real tokenizer (CLS, SEP)


async def test_embeddings_sdk_default_is_base64_and_decodes(fast_stack: Stack) -> None:
    response = await fast_stack.client.embeddings.create(model=EMBED, input="hello")
    assert len(response.data[0].embedding) == 384


async def test_embeddings_take_2048_inputs(fast_stack: Stack) -> None:
    texts = ["a cat", "a kitten"] * 1024
    response = await fast_stack.client.embeddings.create(
        model=EMBED, input=texts, encoding_format="float"
    )
    assert [item.index for item in response.data] == list(range(2048))
    assert {len(item.embedding) for item in response.data} == {384}
    assert response.usage.prompt_tokens == 2048 * 4  # CLS, "a", "cat" or "kitten", SEP
    with pytest.raises(openai.BadRequestError) as info:
        await fast_stack.client.embeddings.create(model=EMBED, input=[*texts, "one more"])
    assert info.value.code == "too_many_inputs" and info.value.param == "input"


async def test_image_generation_b64_png(fast_stack: Stack) -> None:
    result = await fast_stack.client.images.generate(
        model=IMAGE, prompt="a red cat", n=2, size="64x64", extra_body={"seed": 5, "steps": 3}
    )
    images = [Image.open(io.BytesIO(base64.b64decode(item.b64_json))) for item in result.data]
    assert [(image.format, image.size) for image in images] == [("PNG", (64, 64))] * 2
    assert images[0].getpixel((0, 0)) != images[1].getpixel((0, 0))  # seeds 5 and 6


async def test_image_urls_download_the_png(fast_stack: Stack) -> None:
    """``response_format="url"``: links the gateway serves itself, no key needed, for a while."""
    result = await fast_stack.client.images.generate(
        model=IMAGE, prompt="a red cat", n=2, size="64x64", response_format="url"
    )
    edit = await fast_stack.client.images.edit(
        model=IMAGE,
        image=("cat.png", png(64, 64), "image/png"),
        prompt="a hat",
        response_format="url",
    )
    items = [*result.data, *edit.data]
    assert all(item.b64_json is None and item.url for item in items)
    assert len({item.url for item in items}) == 3
    async with aiohttp.ClientSession() as session:
        for item in items:
            assert item.url.startswith(fast_stack.gateway_url + "/v1/images/files/")
            async with session.get(item.url) as response:  # no Authorization header
                assert response.status == 200
                assert response.headers["content-type"] == "image/png"
                image = Image.open(io.BytesIO(await response.read()))
            assert (image.format, image.size) == ("PNG", (64, 64))
        wrong = items[0].url[:-10] + "AAAAAA.png"
        async with session.get(wrong) as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "image_expired"


async def test_image_edit_with_mask(fast_stack: Stack) -> None:
    result = await fast_stack.client.images.edit(
        model=IMAGE,
        image=("cat.png", png(64, 64), "image/png"),
        mask=("mask.png", png(64, 64, 255), "image/png"),
        prompt="add a hat",
        extra_body={"seed": 9, "strength": 0.5},
    )
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (64, 64)


async def test_sdk_error_classes(fast_stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await fast_stack.client.chat.completions.create(
            model=CHAT, messages=MESSAGES, temperature=5
        )
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.NotFoundError):
        await fast_stack.client.chat.completions.create(model="nope", messages=MESSAGES)
    wrong = openai.AsyncOpenAI(
        base_url=fast_stack.gateway_url + "/v1", api_key="sk-wrong", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        await wrong.models.list()


async def test_models_and_health(fast_stack: Stack) -> None:
    models = await fast_stack.client.models.list()
    assert {model.id for model in models.data} == {CHAT, IMAGE, EMBED}
    async with aiohttp.ClientSession() as session:
        async with session.get(fast_stack.gateway_url + "/healthz") as response:
            assert await response.json() == {"status": "ok", "redis": True}
        async with session.get(fast_stack.gateway_url + "/metrics") as response:
            text = await response.text()
    assert "sn19_gateway_requests_total" in text


async def test_raw_sse_ends_with_done(fast_stack: Stack) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fast_stack.gateway_url + "/v1/chat/completions",
            json={"model": CHAT, "messages": MESSAGES, "stream": True},
            headers={"Authorization": f"Bearer {fast_stack.api_key}"},
        ) as response,
    ):
        body = await response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
    assert body.endswith(b"data: [DONE]\n\n")
    assert b"token_ids" not in body


async def test_billing_endpoints_follow_the_mode(fast_stack: Stack) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            fast_stack.gateway_url + "/v1/billing/balance",
            headers={"Authorization": f"Bearer {fast_stack.api_key}"},
        ) as response,
    ):
        body = await response.json()
    if fast_stack.billing:  # the sn19 dev account and its credits
        assert response.status == 200 and body["object"] == "billing.balance"
        assert 0 < body["available_micro"] <= 1_000 * 1_000_000
    else:
        assert response.status == 404 and body["error"]["code"] == "billing_not_enabled"
