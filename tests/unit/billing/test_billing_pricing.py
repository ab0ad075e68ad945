"""Pure pricing and money: exact integer arithmetic, rounding up, monotonicity, hold ≥ settle."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.costs import (
    Usage,
    chat_cost,
    cost,
    embedding_cost,
    estimate_chat,
    estimate_embedding,
    estimate_image,
    image_cost,
)
from billing.money import MICRO, format_credits, parse_credits
from protocol.catalog import Price

prices = st.builds(
    Price,
    input_per_million=st.integers(0, 10**9),
    output_per_million=st.integers(0, 10**9),
    per_step=st.integers(0, 10**7),
)
counts = st.integers(0, 10**7)


def test_examples() -> None:
    price = Price(input_per_million=100_000, output_per_million=200_000, per_step=1000)
    assert chat_cost(price, 1000, 500) == 200  # 100 + 100 micro-credits
    assert chat_cost(price, 1, 0) == 1  # 0.1 micro rounds up to 1
    assert chat_cost(price, 0, 0) == 0
    assert embedding_cost(price, 123) == 13  # ceil(12.3)
    assert image_cost(price, 40) == 40_000
    assert cost("image", price, estimate_image(4, 10)) == 40_000
    assert cost("embedding", price, estimate_embedding(10)) == 1
    with pytest.raises(ValueError):
        cost("audio", price, Usage())


@given(prices, counts, counts)
def test_chat_cost_is_the_exact_ceiling(price: Price, tokens_in: int, tokens_out: int) -> None:
    exact = (
        Decimal(tokens_in * price.input_per_million + tokens_out * price.output_per_million) / MICRO
    )
    assert chat_cost(price, tokens_in, tokens_out) == math.ceil(exact)


@given(prices, counts, counts, counts, counts)
def test_costs_are_monotone(price: Price, a: int, b: int, c: int, d: int) -> None:
    small, large = (
        Usage(input_tokens=a, output_tokens=b, steps=c),
        Usage(input_tokens=a + c, output_tokens=b + d, steps=c + d),
    )
    for kind in ("chat", "embedding", "image"):
        assert 0 <= cost(kind, price, small) <= cost(kind, price, large)


@given(prices, st.integers(0, 10**5), st.integers(1, 10**5), st.integers(1, 16), st.data())
def test_hold_covers_any_delivered_usage(
    price: Price, prompt: int, max_tokens: int, n: int, data: st.DataObject
) -> None:
    estimate = estimate_chat(prompt, max_tokens, n)
    delivered = Usage(
        input_tokens=data.draw(st.integers(0, prompt)),
        output_tokens=data.draw(st.integers(0, max_tokens * n)),
    )
    assert cost("chat", price, delivered) <= cost("chat", price, estimate)
    assert estimate.tokens == (prompt + max_tokens) * n


def test_estimates_validate() -> None:
    with pytest.raises(ValueError):
        estimate_chat(1, 1, 0)
    with pytest.raises(ValueError):
        estimate_image(0, 1)
    with pytest.raises(ValueError):
        Usage(input_tokens=-1)


@given(st.integers(-(10**15), 10**15))
def test_credits_round_trip(micro: int) -> None:
    assert parse_credits(format_credits(micro), allow_negative=True) == micro


def test_parse_credits() -> None:
    assert parse_credits("1") == MICRO
    assert parse_credits(" 0.5 ") == 500_000
    assert parse_credits("1_000") == 1000 * MICRO
    assert parse_credits("0.000001") == 1
    assert format_credits(-1) == "-0.000001"
    for bad in ("0.0000001", "abc", "nan", "inf", ""):
        with pytest.raises(ValueError):
            parse_credits(bad)
    with pytest.raises(ValueError):
        parse_credits("-1")
    assert parse_credits("-1", allow_negative=True) == -MICRO
