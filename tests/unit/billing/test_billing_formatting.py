"""Rate-limit header formatting, and the CLI's text helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.format import parse_expiry, render_table
from billing.holds import Hold, Settlement
from billing.ratelimit import RateDecision, format_duration
from protocol.catalog import Price


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "1ms"),
        (0.25, "250ms"),
        (1, "1s"),
        (8.61, "8.7s"),
        (59.99, "60s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_durations_like_openai(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_decision_headers() -> None:
    decision = RateDecision(
        allowed=False,
        limit_requests=60,
        remaining_requests=-1,
        reset_requests_s=1.0,
        limit_tokens=None,
        retry_after_s=0.2,
    )
    assert decision.headers() == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "retry-after": "1",
        "retry-after-ms": "200",
    }


def test_money_headers() -> None:
    hold = Hold(1, 1, 1, "r", "t", "chat", 1500, Price(), datetime.now(UTC), 2_000_000)
    assert hold.headers() == {"x-sn19-hold": "0.001500", "x-sn19-balance": "2.000000"}
    assert Settlement(1, 7, 10, "ok").headers() == {
        "x-sn19-cost": "0.000007",
        "x-sn19-balance": "0.000010",
    }


def test_parse_expiry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("30d", now=now) == now + timedelta(days=30)
    assert parse_expiry("12h", now=now) == now + timedelta(hours=12)
    assert parse_expiry("never") is None
    assert parse_expiry("2026-12-31") == datetime(2026, 12, 31, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_expiry("soon")


def test_render_table() -> None:
    text = render_table(["id", "name"], [[1, "a"], [22, "bb"]])
    assert text.splitlines() == ["id  name", "--  ----", " 1  a", "22  bb"]
