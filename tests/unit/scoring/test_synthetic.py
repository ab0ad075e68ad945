"""Synthetic requests: valid for the API, varied, realistic parameters, seeds in our range."""

from __future__ import annotations

import random
from collections import Counter

import msgspec
import pytest

from core.miners.structured import check_schema
from inference.requests import constraint_of
from protocol.catalog import resolve_catalog
from protocol.miner import MinerChatRequest
from protocol.openai.chat import ChatCompletionRequest
from protocol.openai.completions import CompletionRequest
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.images import ImageGenerationRequest
from scoring.synthetic import SeedRange, SyntheticFactory
from scoring.synthetic.corpus import load_corpus

TYPES = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
    "/v1/images/generations": ImageGenerationRequest,
    "/v1/embeddings": EmbeddingRequest,
}


def test_corpus_is_large_and_clean() -> None:
    corpus = load_corpus()
    assert len(corpus.topics) >= 150 and len(corpus.chat_templates) >= 60
    assert len(corpus.questions) >= 60 and len(corpus.image_subjects) >= 50
    for entries in (corpus.topics, corpus.chat_templates, corpus.questions):
        assert len(set(entries)) == len(entries)
        assert not any(entry.startswith("#") for entry in entries)
    assert all("{topic}" in template for template in corpus.completion_templates)
    assert any("\n" in template for template in corpus.completion_templates)


def test_seed_range() -> None:
    seeds = SeedRange(7)
    rng = random.Random(1)
    drawn = [seeds.draw(rng) for _ in range(1000)]
    assert all(seeds.owns(seed) and SeedRange.owner(seed) == 7 for seed in drawn)
    assert not SeedRange(8).owns(drawn[0])
    assert len(set(drawn)) == 1000
    assert SeedRange(65535).high <= 2**63
    with pytest.raises(ValueError):
        SeedRange(70000)


@pytest.mark.parametrize("catalog_name", ["dev", "production"])
def test_requests_are_valid_for_every_task(catalog_name: str) -> None:
    catalog = resolve_catalog(catalog_name)
    factory = SyntheticFactory(SeedRange(3), rng=random.Random(5))
    for task in catalog.enabled():
        for _ in range(200):
            made = factory.make(task)
            kind = TYPES[made.path]
            decoded = msgspec.json.decode(made.body(), type=kind)  # strict: no unknown fields
            assert made.task == task.id and made.volume == task.volume_per_request
            if isinstance(decoded, ChatCompletionRequest | CompletionRequest):
                assert decoded.model == task.id
                assert (
                    decoded.max_tokens is None or decoded.max_tokens <= task.text.max_output_tokens
                )
                assert SeedRange(3).owns(decoded.seed)
            elif isinstance(decoded, ImageGenerationRequest):
                assert decoded.size is None or decoded.size in task.image.sizes
                assert decoded.steps is None or 1 <= decoded.steps <= task.image.max_steps
                assert SeedRange(3).owns(decoded.seed)
                assert (decoded.n or 1) <= task.image.max_n
            else:
                inputs = [decoded.input] if isinstance(decoded.input, str) else decoded.input
                assert 1 <= len(inputs) <= task.embedding.max_inputs


def test_chat_traffic_is_varied_and_looks_organic(dev_catalog) -> None:
    task = dev_catalog.get("sn19-tiny-chat")
    factory = SyntheticFactory(SeedRange(0), rng=random.Random(11))
    made = [factory.make(task) for _ in range(1000)]
    paths = Counter(m.path for m in made)
    assert 120 <= paths["/v1/completions"] <= 280  # about a fifth
    chats = [m.request for m in made if isinstance(m.request, ChatCompletionRequest)]
    last_turns = {c.messages[-1].content for c in chats}
    assert len(last_turns) >= 0.75 * len(chats)  # hardly any prompt repeats
    assert 0.3 <= sum(c.messages[0].role == "system" for c in chats) / len(chats) <= 0.7
    assert any(len(c.messages) >= 3 for c in chats)  # some multi-turn conversations
    temperatures = Counter(c.temperature for c in chats)
    assert 0.2 <= temperatures[None] / len(chats) <= 0.4  # many keep the default
    assert len(temperatures) >= 10
    assert 0.65 <= sum(bool(c.stream) for c in chats) / len(chats) <= 0.85
    max_tokens = [c.max_tokens for c in chats if c.max_tokens is not None]
    assert len(set(max_tokens)) >= 30
    assert sorted(max_tokens)[len(max_tokens) // 2] in range(100, 600)
    assert len({c.seed for c in chats}) == len(chats)


def test_image_and_embedding_variety(dev_catalog) -> None:
    factory = SyntheticFactory(SeedRange(1), rng=random.Random(2))
    images = [factory.make(dev_catalog.get("sn19-tiny-diffusion")).request for _ in range(300)]
    assert len({i.prompt for i in images}) >= 250
    assert any(i.negative_prompt for i in images) and any(i.steps for i in images)
    embeds = [factory.make(dev_catalog.get("all-minilm-l6-v2")).request for _ in range(300)]
    assert any(isinstance(e.input, list) for e in embeds)
    assert any(isinstance(e.input, str) for e in embeds)
    assert len({str(e.input) for e in embeds}) >= 250


def test_some_chat_requests_are_constrained(dev_catalog) -> None:
    task = dev_catalog.get("sn19-tiny-chat")
    assert task.text.tool_format is not None
    factory = SyntheticFactory(SeedRange(0), rng=random.Random(12))
    chats = [
        m.request
        for m in (factory.make(task) for _ in range(2000))
        if m.path.endswith("chat/completions")
    ]
    kinds: Counter[str] = Counter()
    for chat in chats:
        body = msgspec.json.decode(msgspec.json.encode(chat), type=MinerChatRequest)
        constraint = constraint_of(body, task.text)
        if chat.response_format is not None:
            kinds[chat.response_format.type] += 1
            if chat.response_format.json_schema is not None:
                check_schema(chat.response_format.json_schema.schema)
        elif chat.tools:
            kinds[chat.tool_choice if isinstance(chat.tool_choice, str) else "named"] += 1
            for tool in chat.tools:
                check_schema(tool.function.parameters)
        else:
            assert constraint is None
            continue
        assert chat.stop is None
        assert (constraint is None) == (chat.tool_choice == "auto")
    assert set(kinds) == {"json_object", "json_schema", "named", "required", "auto"}
    assert 0.1 <= sum(kinds.values()) / len(chats) <= 0.2
