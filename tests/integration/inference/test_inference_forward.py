"""Forward engines against a vLLM-format server backed by the real tiny engines: the forwarded
tokens, logprobs and text must be exactly what the engine behind the server produced."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import msgspec
import pytest
from inference_helpers import collect, ends, tokens, visible_text
from PIL import Image

from inference.base import (
    ChatTurn,
    Constraint,
    EngineError,
    EngineInputError,
    ImageRequest,
    TextRequest,
    ToolCallText,
)
from inference.forward import ForwardTextEngine
from inference.forward_media import ForwardEmbeddingEngine, ForwardImageEngine
from inference.registry import load_engine
from protocol.catalog import EngineSpec
from tests.support.vllm_server import VllmFormatServer


@pytest.fixture(scope="module")
async def upstream(text_engine, image_engine, embed_engine) -> AsyncIterator[VllmFormatServer]:
    server = VllmFormatServer(text_engine, image_engine, embed_engine)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def ok(upstream):
    upstream.mode = "ok"
    yield upstream
    upstream.mode = "ok"


def spec(upstream: VllmFormatServer, **options) -> EngineSpec:
    return EngineSpec(
        type="forward",
        model="builtin:tiny-llama",
        options={"base_url": upstream.base_url, "api_key": "sk-test", **options},
    )


@pytest.fixture
async def forward_text(ok) -> AsyncIterator[ForwardTextEngine]:
    engine = ForwardTextEngine(spec(ok, model="tiny", read_timeout_s=30))
    await engine.start()
    yield engine
    await engine.close()


def comparable(events, *, token_text=True):
    """Completions carry no token bytes, so their token text is only known from the chunk."""
    return [
        (
            e.choice,
            e.token_id,
            e.token if token_text else None,
            e.text,
            e.logprob,
            tuple((a.token_id, a.logprob) for a in e.top),
        )
        if hasattr(e, "token_id")
        else (e.choice, e.finish_reason, e.text)
        for e in events
    ]


@pytest.mark.parametrize(
    "request_",
    [
        TextRequest(
            messages=(ChatTurn("user", "Hello, how are you?"),),
            max_tokens=40,
            temperature=1.0,
            seed=3,
        ),
        TextRequest(
            messages=(ChatTurn("user", "Tell me a story"),),
            max_tokens=40,
            temperature=0.7,
            top_p=0.9,
            seed=5,
            n=2,
            top_logprobs=3,
        ),
        TextRequest(
            prompt="Once upon a time", max_tokens=30, temperature=1.0, seed=9, top_logprobs=2
        ),
        TextRequest(prompt_ids=(256, 104, 105), max_tokens=30, temperature=0.0),
    ],
    ids=["chat", "chat-n2-top", "completion-text", "completion-ids"],
)
async def test_forwarded_events_equal_the_engine_behind(forward_text, text_engine, ok, request_):
    direct = await collect(text_engine, request_)
    forwarded = await collect(forward_text, request_)
    chat = request_.messages is not None
    assert comparable(forwarded, token_text=chat) == comparable(direct, token_text=chat)
    body = ok.requests[-1]
    assert body["model"] == "tiny" and body["stream"] is True
    assert body["return_tokens_as_token_ids"] is True and body["stream_options"] == {
        "include_usage": True
    }
    assert body["n"] == request_.n and body["max_tokens"] == request_.max_tokens


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 12}},
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("temperature", [0.0, 0.8])
async def test_tools_and_constraints_reach_the_server(forward_text, text_engine, ok, temperature):
    """A forced call with an earlier tool round in the conversation: the server is sent the
    tools (rendered by its chat template, tool_choice none: calls are read from the text),
    the earlier calls and tool results, and the grammar as vLLM's structured outputs; what
    comes back is exactly what the engine decodes under the same constraint."""
    params = json.dumps(WEATHER["function"]["parameters"])
    request = TextRequest(
        messages=(
            ChatTurn("user", "Weather in Paris?"),
            ChatTurn(
                "assistant",
                "",
                tool_calls=(ToolCallText(name="get_weather", arguments='{"city": "Paris"}'),),
            ),
            ChatTurn("tool", '{"temp": 21}', tool_call_id="call_0"),
            ChatTurn("user", "And in Lyon?"),
        ),
        tools=(WEATHER,),
        constraint=Constraint(tools=(("get_weather", params),), tool_format="hermes"),
        max_tokens=120,
        temperature=temperature,
        seed=11,
    )
    direct = await collect(text_engine, request)
    forwarded = await collect(forward_text, request)
    assert comparable(forwarded) == comparable(direct)
    body = ok.requests[-1]
    assert body["tools"] == [WEATHER] and body["tool_choice"] == "none"
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["messages"][2]["tool_call_id"] == "call_0"
    assert "root" in body["structured_outputs"]["grammar"]
    text = visible_text(forwarded)
    assert text.startswith("<tool_call>") and text.rstrip().endswith("</tool_call>")


def by_choice(events, *, token_text=True):
    return {
        choice: [e for e in comparable(events, token_text=token_text) if e[0] == choice]
        for choice in sorted({e.choice for e in events})
    }


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completion"])
async def test_greedy_n_asks_one_choice_and_copies_it(forward_text, text_engine, ok, chat):
    """vLLM refuses n >= 2 at temperature 0 (the server here does too): the engine asks for one
    choice and gives it n times, each copy with its own index."""
    common = {"max_tokens": 24, "temperature": 0.0, "n": 3, "top_logprobs": 2}
    request_ = (
        TextRequest(messages=(ChatTurn("user", "Hello there"),), **common)
        if chat
        else TextRequest(prompt="Once upon a time", **common)
    )
    forwarded = await collect(forward_text, request_)
    assert ok.requests[-1]["n"] == 1
    choices = by_choice(forwarded, token_text=chat)
    assert sorted(choices) == [0, 1, 2]
    direct = await collect(text_engine, msgspec.structs.replace(request_, n=1))
    single = by_choice(direct, token_text=chat)[0]
    for index, events in choices.items():
        assert [e[1:] for e in events] == [e[1:] for e in single]
        assert all(e[0] == index for e in events)
    assert len(ends(forwarded)) == 3
    sampled = msgspec.structs.replace(request_, temperature=1.0, seed=4)
    await collect(forward_text, sampled)
    assert ok.requests[-1]["n"] == 3


async def test_upstream_refusals_are_input_errors(ok):
    """vLLM's 400 (an HTTP answer, or an error event in a 200 stream) is the request's fault."""
    engine = ForwardTextEngine(spec(ok, model="tiny"))
    await engine.start()
    try:
        ok.mode = "inband_400"
        with pytest.raises(EngineInputError, match="max_tokens is too large"):
            await collect(engine, TextRequest(prompt="hi", max_tokens=8, temperature=1.0))
    finally:
        await engine.close()


async def test_stop_strings_are_forwarded(forward_text, text_engine, ok):
    base = TextRequest(messages=(ChatTurn("user", "Hi"),), max_tokens=48, temperature=0.0)
    full = visible_text(await collect(text_engine, base))
    stop = full[2:4]
    request = TextRequest(messages=base.messages, max_tokens=48, temperature=0.0, stop=(stop,))
    forwarded = await collect(forward_text, request)
    assert ok.requests[-1]["stop"] == [stop]
    assert visible_text(forwarded) == full[: full.index(stop)]
    assert ends(forwarded)[0].finish_reason == "stop"
    assert comparable(forwarded) == comparable(await collect(text_engine, request))


async def test_upstream_without_token_ids_is_an_error(forward_text, ok):
    ok.mode = "no_token_ids"
    with pytest.raises(EngineError, match="token ids"):
        await collect(forward_text, TextRequest(prompt="hi", max_tokens=8, seed=1))


async def test_upstream_failures_are_engine_errors(forward_text, ok):
    ok.mode = "http_500"
    with pytest.raises(EngineError, match="500"):
        await collect(forward_text, TextRequest(prompt="hi", max_tokens=8))
    ok.mode = "no_done"
    with pytest.raises(EngineError, match="DONE"):
        await collect(forward_text, TextRequest(prompt="hi", max_tokens=8, seed=1))
    ok.mode = "ok"
    with pytest.raises(EngineInputError, match="400"):
        await collect(forward_text, TextRequest(prompt="x" * 3000, max_tokens=8))


async def test_unreachable_upstream_is_an_engine_error():
    engine = ForwardTextEngine(
        EngineSpec(
            type="forward",
            model="m",
            options={"base_url": "http://127.0.0.1:9/v1", "connect_timeout_s": 2},
        )
    )
    await engine.start()
    try:
        with pytest.raises(EngineError, match="failed"):
            await collect(engine, TextRequest(prompt="hi", max_tokens=4))
    finally:
        await engine.close()


async def test_closing_the_stream_early_cancels_cleanly(forward_text, ok):
    stream = forward_text.generate(TextRequest(prompt="x", max_tokens=500, temperature=1.0, seed=2))
    count = 0
    async for _ in stream:
        count += 1
        if count == 3:
            break
    await stream.aclose()
    events = await collect(forward_text, TextRequest(prompt="x", max_tokens=4, temperature=0.0))
    assert len(tokens(events)) <= 4 and ends(events)


async def test_prompt_token_estimates(ok, tmp_path, text_engine):
    engine = ForwardTextEngine(spec(ok))
    assert engine.count_prompt_tokens(TextRequest(prompt_ids=(1, 2, 3), max_tokens=1)) == 3
    chat = TextRequest(
        messages=(ChatTurn("system", "Be brief."), ChatTurn("user", "héllo ✓")), max_tokens=1
    )
    assert engine.count_prompt_tokens(chat) == text_engine.count_prompt_tokens(chat)
    prompt = TextRequest(prompt="héllo", max_tokens=1)
    assert engine.count_prompt_tokens(prompt) == text_engine.count_prompt_tokens(prompt)
    text_engine.tokenizer.save_pretrained(tmp_path)
    with_tokenizer = ForwardTextEngine(spec(ok, tokenizer=str(tmp_path / "tokenizer.json")))
    await with_tokenizer.start()
    try:
        assert with_tokenizer.count_prompt_tokens(chat) == text_engine.count_prompt_tokens(chat)
    finally:
        await with_tokenizer.close()
    broken = ForwardTextEngine(spec(ok, tokenizer=str(tmp_path / "missing.json")))
    with pytest.raises(EngineError, match="tokenizer"):
        await broken.start()


def test_registry_builds_forward_engines(ok, dev_catalog):
    chat_task = dev_catalog.get("sn19-tiny-chat")
    engine = load_engine(chat_task, spec(ok))
    assert isinstance(engine, ForwardTextEngine)
    with pytest.raises(EngineError, match="base_url"):
        load_engine(chat_task, EngineSpec(type="forward", model="m"))
    image = load_engine(dev_catalog.get("sn19-tiny-diffusion"), spec(ok))
    assert isinstance(image, ForwardImageEngine) and image.supports_inpainting
    embed = load_engine(dev_catalog.get("all-minilm-l6-v2"), spec(ok))
    assert isinstance(embed, ForwardEmbeddingEngine) and embed.dimensions == 384


async def test_forwarded_images_equal_the_engine_behind(ok, image_engine, dev_catalog):
    engine = load_engine(dev_catalog.get("sn19-tiny-diffusion"), spec(ok))
    await engine.start()
    try:
        request = ImageRequest(prompt="a boat", width=64, height=64, steps=3, seed=5, n=2)
        assert await engine.generate(request) == await image_engine.generate(request)
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 10)).save(buffer, format="PNG")
        edit = ImageRequest(
            prompt="a boat",
            width=64,
            height=64,
            steps=4,
            seed=5,
            init_image=buffer.getvalue(),
            strength=0.5,
        )
        assert await engine.generate(edit) == await image_engine.generate(edit)
        assert ok.requests[-1]["image"].startswith("data:image/png;base64,")
        jpeg = ImageRequest(
            prompt="a boat", width=64, height=64, steps=3, seed=5, output_format="jpeg"
        )
        (data,) = await engine.generate(jpeg)
        assert Image.open(io.BytesIO(data)).format == "JPEG"
    finally:
        await engine.close()


async def test_forwarded_embeddings_equal_the_engine_behind(ok, embed_engine, dev_catalog):
    engine = load_engine(dev_catalog.get("all-minilm-l6-v2"), spec(ok))
    await engine.start()
    try:
        inputs = ["cat", "a much longer sentence about kittens"]
        forwarded = await engine.embed(inputs)
        direct = await embed_engine.embed(inputs)
        assert forwarded == direct
        short = await engine.embed(inputs, dimensions=32)
        assert all(len(v) == 32 for v in short.vectors)
        assert ok.requests[-1]["encoding_format"] == "float" and ok.requests[-1]["dimensions"] == 32
        assert engine.count_tokens(inputs) >= direct.prompt_tokens
    finally:
        await engine.close()
