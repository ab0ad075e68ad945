"""The dev catalog's tiny models: deterministic builds, loadable saved directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inference.tiny import (
    LM_HEAD_SCALE,
    MAX_POSITIONS,
    SPECIAL_TOKENS,
    build_tiny_llama,
    build_tiny_tokenizer,
    save_tiny_llama,
    weights_sha256,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_llama()


def test_tokenizer_is_byte_level_with_llama3_specials():
    tokenizer = build_tiny_tokenizer()
    assert len(tokenizer) == 262
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(256, 262))
    text = "héllo wörld ✓"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids == list(text.encode())
    assert tokenizer.decode(ids) == text
    assert tokenizer.encode("hi") == [256, ord("h"), ord("i")]
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert (
        prompt == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert tokenizer.eos_token == "<|eot_id|>"


def test_model_shape(tiny):
    model, tokenizer = tiny
    config = model.config
    assert config.vocab_size == len(tokenizer) == 262
    assert config.hidden_size // config.num_attention_heads == 64
    assert config.num_hidden_layers == 2 and config.max_position_embeddings == MAX_POSITIONS
    assert model.dtype == torch.float32 and not model.training
    assert set(model.generation_config.eos_token_id) == {260, 257}
    assert LM_HEAD_SCALE == 200.0


def test_build_is_deterministic_in_process(tiny):
    model, _ = tiny
    again, _ = build_tiny_llama()
    assert weights_sha256(again) == weights_sha256(model)
    state = torch.get_rng_state()
    build_tiny_llama()
    assert torch.equal(state, torch.get_rng_state()), "building must not touch the global RNG"


@pytest.mark.slow
def test_build_is_deterministic_across_processes_and_threads(tiny):
    model, _ = tiny
    script = (
        "from inference.tiny import build_tiny_llama, weights_sha256\n"
        "print(weights_sha256(build_tiny_llama()[0]))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == weights_sha256(model)


def test_distributions_are_peaked(tiny):
    model, tokenizer = tiny
    ids = tokenizer.encode("The quick brown fox jumps over the lazy dog. " * 4)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    top1 = probs.max(dim=-1).values.mean().item()
    entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(dim=-1).mean().item()
    assert top1 > 0.8 and entropy < 0.5


def test_saved_directory_reloads_identically(tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = tiny
    directory = save_tiny_llama(tmp_path / "tiny-llama")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in directory.iterdir()
    }
    reloaded = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
    assert weights_sha256(reloaded) == weights_sha256(model)
    reloaded_tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    messages = [{"role": "user", "content": "héllo"}]
    assert reloaded_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    ) == tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert reloaded_tokenizer.encode("héllo") == tokenizer.encode("héllo")
    assert set(reloaded.generation_config.eos_token_id) == {260, 257}
