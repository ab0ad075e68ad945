"""Pure pricing: what a request may cost (the hold) and what it did cost (the settle).

Prices are integer micro-credits per million tokens (input, output) or per image step; costs
are integer micro-credits, rounded up (a request that used anything costs at least 1 unit when
its price is not zero):

- chat:      ceil((input_tokens × input_per_million + output_tokens × output_per_million) / 1e6)
- embedding: ceil(input_tokens × input_per_million / 1e6)
- image:     steps × per_step, where ``steps`` is the total over all images (n × steps each)

The hold is the cost of the largest possible usage (``estimate_*``); the settle charges the cost
of the delivered usage, never more than the hold. Costs are monotone in usage, so
``cost(delivered) ≤ cost(estimate)`` whenever ``delivered ≤ estimate`` field by field.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from protocol.catalog import Price

Kind = Literal["chat", "image", "embedding"]
PER_MILLION = 1_000_000


class Usage(msgspec.Struct, frozen=True):
    """Metered work of one request (or the most it may use, for a hold)."""

    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    # Total denoising steps over all images.
    steps: int = 0

    def __post_init__(self) -> None:
        if min(self.input_tokens, self.output_tokens, self.images, self.steps) < 0:
            raise ValueError("usage counts must not be negative")

    @property
    def tokens(self) -> int:
        """What the TPM limit counts."""
        return self.input_tokens + self.output_tokens


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def chat_cost(price: Price, input_tokens: int, output_tokens: int) -> int:
    total = input_tokens * price.input_per_million + output_tokens * price.output_per_million
    return _ceil_div(total, PER_MILLION)


def embedding_cost(price: Price, input_tokens: int) -> int:
    return _ceil_div(input_tokens * price.input_per_million, PER_MILLION)


def image_cost(price: Price, steps: int) -> int:
    return steps * price.per_step


def cost(kind: Kind | str, price: Price, usage: Usage) -> int:
    """Micro-credits for ``usage`` of a task of ``kind`` at ``price``."""
    if kind == "chat":
        return chat_cost(price, usage.input_tokens, usage.output_tokens)
    if kind == "embedding":
        return embedding_cost(price, usage.input_tokens)
    if kind == "image":
        return image_cost(price, usage.steps)
    raise ValueError(f"unknown task kind {kind!r}")


def estimate_chat(prompt_tokens: int, max_output_tokens: int, n: int = 1) -> Usage:
    """The most a chat/completions request may use: (prompt + max output tokens) × n (SPEC §4;
    over-reserving the prompt n times is deliberate: it is released at settle)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return Usage(input_tokens=prompt_tokens * n, output_tokens=max_output_tokens * n)


def estimate_image(n: int, steps: int) -> Usage:
    if n < 1 or steps < 1:
        raise ValueError("n and steps must be at least 1")
    return Usage(images=n, steps=n * steps)


def estimate_embedding(input_tokens: int) -> Usage:
    return Usage(input_tokens=input_tokens)
