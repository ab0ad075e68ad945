"""Pure parts of the dashboard: charts, tokens, passwords, form parsing, formatting, the
in-memory sign-in limiter, safe redirects."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from litestar.datastructures import FormMultiDict

from web.charts import (
    REQUESTS,
    SCORE,
    TOKENS,
    Axis,
    bar_chart,
    compact,
    line_chart,
    nice_step,
    ticks,
)
from web.forms import FormError, credits, expiry, models, whole
from web.passwords import hash_password, password_problem, verify_password
from web.ratelimit import MemoryLoginLimiter
from web.render import CREDITS_AXIS, credits_text
from web.tokens import csrf_matches, csrf_token, new_token, token_hash


def _ticks(values: list[float], axis: Axis = REQUESTS) -> list[str]:
    return [compact(v) for v in ticks(values, axis)]


def test_ticks_for_zero_tiny_and_large_values() -> None:
    # Nothing yet: a clean axis of one shown unit (never "0, 0, 0").
    assert _ticks([0, 0], CREDITS_AXIS) == ["0", "0.25", "0.5", "0.75", "1"]
    assert _ticks([], REQUESTS) == ["0", "1"]
    # Tiny: one micro-credit is the smallest step, so labels never repeat.
    assert _ticks([1, 3], CREDITS_AXIS) == ["0", "0.000001", "0.000002", "0.000003"]
    assert _ticks([120], CREDITS_AXIS) == ["0", "0.00005", "0.0001", "0.00015"]
    # Counts step by whole numbers (no 2.5), large values read compactly.
    assert _ticks([7]) == ["0", "2", "4", "6", "8"]
    assert _ticks([10]) == ["0", "5", "10"]
    assert _ticks([1_234_567], TOKENS) == ["0", "500k", "1M", "1.5M"]
    assert _ticks([49_999_981], CREDITS_AXIS) == ["0", "20", "40", "60"]
    assert _ticks([0.3], SCORE) == ["0", "0.25", "0.5", "0.75", "1"]
    for top in (0.3, 1, 7, 12, 26, 90, 4100, 7.5e9):
        values = ticks([top], REQUESTS)
        assert values[0] == 0 and values[-1] >= top and 2 <= len(values) <= 5
        assert len({compact(v) for v in values}) == len(values)
    assert [nice_step(v) for v in (0.3, 1, 7, 12, 26)] == [0.5, 1, 10, 20, 50]
    assert nice_step(0.3, 1) == 1 and nice_step(2.1, 1) == 5


def test_charts_are_escaped_html_with_titles_and_units() -> None:
    points = [("2026-11-01", 3), ("<b>2026-11-02</b>", 10), ("2026-11-03", 0)]
    chart = str(bar_chart("Requests <per> day", points))
    assert chart.startswith('<figure class="chart') and chart.endswith("</figure>")
    assert "<b>" not in chart and "&lt;b&gt;" in chart and "Requests &lt;per&gt; day" in chart
    assert '<span class="unit">(requests)</span>' in chart
    assert chart.count('class="bar"') == 3 and "<title>2026-11-01: 3 requests</title>" in chart
    assert 'style="' not in chart  # the CSP forbids inline styles
    line = str(line_chart("Tokens", points, TOKENS))
    assert 'class="line"' in line and line.count('class="hit"') == 3
    empty = str(bar_chart("Nothing", [("a", 0), ("b", 0)], CREDITS_AXIS))
    assert "No data in this period" in empty and 'class="bar"' not in empty
    assert "<span>1</span><span>0.75</span><span>0.5</span><span>0.25</span><span>0</span>" in empty
    money = str(bar_chart("Spent", [("d", 19)], CREDITS_AXIS))
    assert "<title>d: 0.000019 credits</title>" in money


def test_tokens() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43
    assert len(token_hash(a)) == 64 and token_hash(a) != token_hash(b)
    assert csrf_matches(a, csrf_token(a)) and not csrf_matches(b, csrf_token(a))
    assert (
        not csrf_matches(None, csrf_token(a))
        and not csrf_matches(a, None)
        and not csrf_matches(a, "")
    )


def test_passwords() -> None:
    hashed = hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a long enough password")
    assert not verify_password(hashed, "wrong password!")
    assert not verify_password(None, "anything at all")
    assert not verify_password("not-a-hash", "anything at all")
    assert (
        password_problem("short") and password_problem(" " * 12) and not password_problem("x" * 10)
    )


def _form(**fields: object) -> FormMultiDict:
    return FormMultiDict(fields)


def test_form_parsing() -> None:
    assert credits(_form(a="1,250.5"), "a") == 1_250_500_000
    assert credits(_form(a=""), "a") is None
    with pytest.raises(FormError):
        credits(_form(a="0.0000001"), "a")
    with pytest.raises(FormError):
        credits(_form(a="-1"), "a")
    assert credits(_form(a="-1"), "a", allow_negative=True) == -1_000_000
    assert whole(_form(n="1_000"), "n") == 1000
    with pytest.raises(FormError):
        whole(_form(n="1.5"), "n")
    with pytest.raises(FormError):
        whole(_form(n="3"), "n", minimum=5)
    known = ["a", "b"]
    assert models(_form(model_scope="all", models="a"), known) is None
    assert models(
        FormMultiDict([("model_scope", "only"), ("models", "b"), ("models", "a"), ("models", "b")]),
        known,
    ) == ("b", "a")
    with pytest.raises(FormError):
        models(_form(model_scope="only"), known)
    with pytest.raises(FormError):
        models(_form(model_scope="only", models="zzz"), known)
    assert expiry(_form(e="2026-12-01"), "e", today=date(2026, 11, 25)) == datetime(
        2026, 12, 1, 23, 59, 59, 999999, tzinfo=UTC
    )
    with pytest.raises(FormError):
        expiry(_form(e="2026-11-01"), "e", today=date(2026, 11, 25))


def test_credit_formatting() -> None:
    assert credits_text(0) == "0.000000"
    assert credits_text(1_234_567_890_000) == "1,234,567.890000"
    assert credits_text(49_999_981) == "49.999981"
    assert credits_text(1) == "0.000001"
    assert credits_text(-2_250_000) == "-2.250000"
    assert credits_text(None) == "—"


async def test_memory_limiter() -> None:
    now = [1000.0]
    limiter = MemoryLoginLimiter(max_failures=2, window_s=60, clock=lambda: now[0])
    assert await limiter.retry_after("a@x.io", "1.1.1.1") == 0
    await limiter.failed("a@x.io", "1.1.1.1")
    await limiter.failed("A@x.io ", "1.1.1.1")  # same address, normalized
    assert 0 < await limiter.retry_after("a@x.io", "1.1.1.1") <= 60
    assert await limiter.retry_after("a@x.io", "2.2.2.2") == 0
    assert await limiter.retry_after("b@x.io", "1.1.1.1") == 0
    now[0] += 61
    assert await limiter.retry_after("a@x.io", "1.1.1.1") == 0
    for i in range(20):
        await limiter.failed(f"user{i}@x.io", "9.9.9.9")
    assert await limiter.retry_after("fresh@x.io", "9.9.9.9") > 0  # per-address allowance (10x)
