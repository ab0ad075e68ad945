"""Sampling and detokenization shared by the local text engines (and usable by the checker).

``sampling_distribution`` is *the* definition of the distribution a request samples from:
``q = softmax(logits / T)`` restricted to the smallest set of most likely tokens whose cumulative
probability reaches ``top_p`` (ties broken by token id), renormalised; ``T == 0`` means greedy.
torch is imported by the callers that pass tensors in; this module imports it lazily.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def sampling_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The probabilities a request with ``temperature > 0`` samples from, for the last axis of
    ``logits`` (any leading shape), in float32."""
    import torch

    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    ordered, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    before = torch.cumsum(ordered, dim=-1) - ordered
    keep = before < top_p
    keep[..., 0] = True
    kept = torch.where(keep, ordered, torch.zeros_like(ordered))
    kept = kept / kept.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probs).scatter(-1, order, kept)


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> int:
    """One token id from 1-d ``logits``: argmax at temperature 0, else a draw from
    ``sampling_distribution`` with ``generator`` (one ``torch.multinomial`` call per token)."""
    import torch

    if temperature <= 0.0:
        return int(torch.argmax(logits))
    probs = sampling_distribution(logits, temperature, top_p)
    return int(torch.multinomial(probs, 1, generator=generator))


_BYTE_SYMBOLS: dict[str, int] | None = None


def _byte_symbols() -> dict[str, int]:
    global _BYTE_SYMBOLS  # noqa: PLW0603 - a lazily built constant table
    if _BYTE_SYMBOLS is None:
        from inference.tiny import bytes_to_unicode

        _BYTE_SYMBOLS = {symbol: byte for byte, symbol in bytes_to_unicode().items()}
    return _BYTE_SYMBOLS


class TokenTable:
    """Per-token display text and raw bytes, computed on first use and cached.

    ``text`` is the decoding of the token alone (a byte that is part of a multi-byte character
    shows as U+FFFD, as vLLM and OpenAI show it); ``raw`` is the token's bytes: for a byte-level
    BPE tokenizer its symbols mapped back to bytes; otherwise a SentencePiece ``<0xNN>``
    byte-fallback token is that one byte, anything else its piece in UTF-8 (``▁`` as a space).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._text: dict[int, str] = {}
        self._raw: dict[int, bytes] = {}
        self._special = set(getattr(tokenizer, "all_special_ids", ()) or ())
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self._special.update(int(token_id) for token_id in added)
        # A fast tokenizer's decoder, or a slow GPT-2 style tokenizer's byte map.
        self._byte_level = is_byte_level(tokenizer) or hasattr(tokenizer, "byte_decoder")

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special

    def text(self, token_id: int) -> str:
        text = self._text.get(token_id)
        if text is None:
            text = self._tokenizer.decode([token_id], skip_special_tokens=False)
            self._text[token_id] = text
        return text

    def raw(self, token_id: int) -> bytes:
        raw = self._raw.get(token_id)
        if raw is None:
            raw = self._compute_raw(token_id)
            self._raw[token_id] = raw
        return raw

    def _compute_raw(self, token_id: int) -> bytes:
        if token_id in self._special:
            return self.text(token_id).encode()
        piece = self._tokenizer.convert_ids_to_tokens(token_id)
        if not isinstance(piece, str):
            return self.text(token_id).encode()
        if self._byte_level:
            symbols = _byte_symbols()
            if piece and all(char in symbols for char in piece):
                return bytes(symbols[char] for char in piece)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            try:
                return bytes([int(piece[3:5], 16)])
            except ValueError:
                pass
        return piece.replace("\u2581", " ").encode()


def is_byte_level(tokenizer: Any) -> bool:
    """Whether a (fast) tokenizer decodes with byte-level BPE (GPT-2, Llama 3, ours)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    return type(decoder).__name__ == "ByteLevel"


class IncrementalDetokenizer:
    """Visible text of a growing token sequence, one token at a time; special tokens are not
    shown (vLLM's default).

    Byte-level tokenizers: the tokens' raw bytes go through an incremental UTF-8 decoder, which
    holds back only an incomplete character (at most 3 bytes) and shows invalid bytes as U+FFFD
    at once, so the pieces add up exactly to the decoding of the whole sequence.
    Other tokenizers: a short window of recent tokens (starting inside the prompt, so tokenizers
    that strip a leading space at the start of a decode still render it) is decoded and only the
    new characters are emitted; text ending in U+FFFD is held until the next token completes it
    (for at most ``MAX_HELD`` tokens), or until ``flush``.
    """

    MAX_HELD = 8

    def __init__(
        self,
        tokenizer: Any,
        prompt_ids: list[int],
        *,
        table: TokenTable | None = None,
        context: int = 5,
    ) -> None:
        self._tokenizer = tokenizer
        self._table = table if table is not None else TokenTable(tokenizer)
        self._utf8 = (
            codecs.getincrementaldecoder("utf-8")("replace") if is_byte_level(tokenizer) else None
        )
        self._ids = list(prompt_ids[-context:]) if context else []
        self._prefix = 0
        self._read = len(self._ids)

    def _decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def push(self, token_id: int) -> str:
        if self._utf8 is not None:
            if self._table.is_special(token_id):
                return ""
            return self._utf8.decode(self._table.raw(token_id))
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        held = len(self._ids) - self._read
        if len(new_text) > len(prefix_text) and (
            not new_text.endswith("\ufffd") or held > self.MAX_HELD
        ):
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """The text still held back (an incomplete character renders as U+FFFD)."""
        if self._utf8 is not None:
            return self._utf8.decode(b"", final=True)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return new_text[len(prefix_text) :] if len(new_text) > len(prefix_text) else ""
