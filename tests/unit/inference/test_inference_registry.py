"""Engines build from catalog specs without loading anything; heavy libraries stay lazy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inference.base import EmbeddingEngine, EngineError, ImageEngine, TextEngine
from inference.diffusers_image import DiffusersImageEngine
from inference.registry import load_engine
from inference.sentence_embed import SentenceEmbeddingEngine
from inference.transformers_text import TransformersTextEngine
from inference.vllm_text import VllmTextEngine
from protocol.catalog import EngineSpec, resolve_catalog

ROOT = Path(__file__).resolve().parents[3]


def test_importing_engine_modules_loads_no_heavy_library():
    script = (
        "import sys\n"
        "import inference, inference.base, inference.registry, inference.tiny, inference.sampling\n"
        "import inference.transformers_text, inference.diffusers_image, inference.sentence_embed\n"
        "import inference.vllm_text, inference.forward, inference.forward_stream\n"
        "import inference.forward_media, inference.thread, inference.transformers_load\n"
        "heavy = {'torch', 'transformers', 'diffusers', 'vllm', 'sentence_transformers',"
        " 'numpy', 'PIL'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_dev_catalog_engines_construct_without_loading():
    catalog = resolve_catalog("dev")
    chat = load_engine(catalog.get("sn19-tiny-chat"))
    assert isinstance(chat, TransformersTextEngine) and isinstance(chat, TextEngine)
    assert chat.model_ref == "builtin:tiny-llama" and chat._context_limit == 2048
    image = load_engine(catalog.get("sn19-tiny-diffusion"))
    assert isinstance(image, DiffusersImageEngine) and isinstance(image, ImageEngine)
    embed = load_engine(catalog.get("all-minilm-l6-v2"))
    assert isinstance(embed, SentenceEmbeddingEngine) and isinstance(embed, EmbeddingEngine)


def test_options_reach_the_engines():
    catalog = resolve_catalog("dev")
    chat = load_engine(
        catalog.get("sn19-tiny-chat"),
        EngineSpec(
            type="transformers",
            model="builtin:tiny-llama",
            options={"threads": 1, "context_length": 512},
        ),
        device="cpu",
    )
    assert chat.threads == 1 and chat._context_limit == 512 and chat.device == "cpu"
    image = load_engine(
        catalog.get("sn19-tiny-diffusion"),
        EngineSpec(
            type="diffusers",
            model="m",
            options={"scheduler": "euler-trailing", "base": "b", "unet_file": "u.safetensors"},
        ),
    )
    assert (
        image.scheduler == "euler-trailing"
        and image.base == "b"
        and image.unet_file == "u.safetensors"
    )
    with pytest.raises(EngineError, match="unknown scheduler"):
        load_engine(
            catalog.get("sn19-tiny-diffusion"),
            EngineSpec(type="diffusers", model="m", options={"scheduler": "nope"}),
        )
    embed = load_engine(
        catalog.get("all-minilm-l6-v2"),
        EngineSpec(type="sentence-transformers", model="m", options={"truncate": True}),
    )
    assert embed.truncate is True


def test_production_vllm_specs_construct_without_vllm():
    catalog = resolve_catalog("production")
    chat_tasks = [
        task for task in catalog.tasks if task.kind == "chat" and task.engine.type == "vllm"
    ]
    assert chat_tasks
    for task in chat_tasks:
        engine = load_engine(task)
        assert isinstance(engine, VllmTextEngine)
        assert engine.engine_options["max_model_len"] == task.engine.options.get(
            "max_model_len", task.text.context_length
        )
    with pytest.raises(EngineError, match="unknown vllm engine options"):
        load_engine(chat_tasks[0], EngineSpec(type="vllm", model="m", options={"bogus": 1}))


async def test_vllm_missing_is_a_clear_error():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed")
    engine = VllmTextEngine("some/model")
    with pytest.raises(EngineError, match="needs vLLM installed"):
        await engine.start()
