"""The sampling distribution, token sampling and incremental detokenization."""

from __future__ import annotations

import pytest
import torch

from inference.sampling import (
    IncrementalDetokenizer,
    TokenTable,
    sample_token,
    sampling_distribution,
)
from inference.tiny import build_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def test_nucleus_is_the_smallest_set_reaching_top_p():
    logits = torch.log(torch.tensor([0.1, 0.4, 0.3, 0.2]))
    q = sampling_distribution(logits, 1.0, 0.6)
    assert torch.allclose(q, torch.tensor([0.0, 4 / 7, 3 / 7, 0.0]))
    q = sampling_distribution(logits, 1.0, 0.7)  # 0.4 + 0.3 reaches 0.7 exactly
    assert torch.allclose(q, torch.tensor([0.0, 4 / 7, 3 / 7, 0.0]))
    q = sampling_distribution(logits, 1.0, 0.71)
    assert torch.allclose(q, torch.tensor([0.0, 4 / 9, 3 / 9, 2 / 9]))
    q = sampling_distribution(logits, 1.0, 0.0)
    assert q.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert torch.allclose(
        sampling_distribution(logits, 1.0, 1.0), torch.tensor([0.1, 0.4, 0.3, 0.2])
    )


def test_temperature_scales_before_the_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    q = sampling_distribution(logits, 0.5, 1.0)
    assert torch.allclose(q, torch.softmax(logits / 0.5, dim=-1))
    assert torch.allclose(q.sum(dim=-1), torch.ones(2))


def test_sample_token_greedy_and_inside_nucleus():
    generator = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([0.05, 0.5, 0.3, 0.15]))
    assert sample_token(logits, 0.0, 0.1, generator) == 1
    draws = {sample_token(logits, 1.0, 0.7, generator) for _ in range(300)}
    assert draws == {1, 2}
    draws = {sample_token(logits, 1.0, 1.0, generator) for _ in range(400)}
    assert draws == {0, 1, 2, 3}


def test_same_generator_seed_same_draws():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(1))

    def draws(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return [sample_token(logits, 1.0, 0.9, generator) for _ in range(20)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


def test_detokenizer_renders_multibyte_characters_once_complete(tokenizer):
    text = "héllo wörld ✓ 🙂!"
    ids = tokenizer.encode(text, add_special_tokens=False)
    prompt = tokenizer.encode(
        "<|start_header_id|>assistant<|end_header_id|>\n\n", add_special_tokens=False
    )
    detokenizer = IncrementalDetokenizer(tokenizer, prompt)
    pieces = [detokenizer.push(token) for token in ids]
    assert "".join(pieces) + detokenizer.flush() == text
    assert "\ufffd" not in "".join(pieces)
    assert pieces[1] == "" and pieces[2] == "é"


def test_detokenizer_flushes_an_incomplete_character(tokenizer):
    detokenizer = IncrementalDetokenizer(tokenizer, [])
    assert detokenizer.push(ord("a")) == "a"
    assert detokenizer.push(0xE2) == ""
    assert detokenizer.push(0x9C) == ""
    assert detokenizer.flush() == "\ufffd"


def test_detokenizer_hides_special_tokens(tokenizer):
    detokenizer = IncrementalDetokenizer(tokenizer, [])
    header = tokenizer.convert_tokens_to_ids("<|start_header_id|>")
    assert detokenizer.push(ord("x")) == "x"
    assert detokenizer.push(header) == ""
    assert detokenizer.push(ord("y")) == "y"


def test_token_table(tokenizer):
    table = TokenTable(tokenizer)
    assert table.raw(0xE2) == b"\xe2" and table.text(0xE2) == "\ufffd"
    assert table.raw(ord(" ")) == b" " and table.text(ord(" ")) == " "
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert table.text(eot) == "<|eot_id|>" and table.raw(eot) == b"<|eot_id|>"
    assert all(table.raw(byte) == bytes([byte]) for byte in range(256))


def test_detokenizer_shows_invalid_bytes_at_once(tokenizer):
    detokenizer = IncrementalDetokenizer(tokenizer, [])
    assert [detokenizer.push(byte) for byte in (0x8C, 0x8C, 0x41)] == ["\ufffd", "\ufffd", "A"]
    assert detokenizer.push(0xED) == "" and detokenizer.push(0x41) == "\ufffdA"


class _BytesTokenizer:
    """A tokenizer without a byte-level backend: ids are bytes, decoded leniently."""

    all_special_ids: list[int] = []

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")

    def convert_ids_to_tokens(self, token_id):
        return chr(token_id)


def test_window_detokenizer_for_other_tokenizers():
    detokenizer = IncrementalDetokenizer(_BytesTokenizer(), list(b"ab"))
    text = "é✓!"
    pieces = [detokenizer.push(byte) for byte in text.encode()]
    assert "".join(pieces) + detokenizer.flush() == text
    stray = IncrementalDetokenizer(_BytesTokenizer(), [])
    out = [stray.push(0x8C) for _ in range(IncrementalDetokenizer.MAX_HELD + 2)]
    assert "".join(out).startswith("\ufffd"), "held-back text is bounded"


class _SentencePieceTokenizer:
    """A SentencePiece-style vocabulary with byte fallback (Llama 2, Mistral): no byte-level
    backend; ``<0xNN>`` pieces are single bytes, ``▁`` marks a space."""

    all_special_ids: list[int] = []
    PIECES = {1: "<0xE2>", 2: "\u2581hi", 3: "caf\u00e9", 4: "<0x41>"}

    def decode(self, ids, skip_special_tokens=True):
        piece = self.PIECES[ids[0]]
        if piece.startswith("<0x"):
            return bytes([int(piece[3:5], 16)]).decode("utf-8", errors="replace")
        return piece.replace("\u2581", " ")

    def convert_ids_to_tokens(self, token_id):
        return self.PIECES[token_id]


def test_token_table_byte_fallback_tokens_are_their_raw_byte():
    table = TokenTable(_SentencePieceTokenizer())
    assert table.text(1) == "\ufffd" and table.raw(1) == b"\xe2"  # not the UTF-8 of U+FFFD
    assert table.raw(4) == b"A"
    assert table.raw(2) == b" hi"
    assert table.raw(3) == "caf\u00e9".encode()  # UTF-8, not byte-level symbols (b"caf\xe9")
