"""Pure parts of the dashboard: charts, tokens, passwords, form parsing, formatting, the
in-memory sign-in limiter, safe redirects."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from litestar.datastructures import FormMultiDict

from web.charts import bar_chart, compact, line_chart, nice_ceiling
from web.forms import FormError, credits, expiry, models, whole
from web.passwords import hash_password, password_problem, verify_password
from web.ratelimit import MemoryLoginLimiter
from web.render import credits_text
from web.tokens import csrf_matches, csrf_token, new_token, token_hash


def test_nice_ceiling_and_compact() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 12, 26, 90, 4100)] == [
        1,
        0.5,
        1,
        10,
        20,
        50,
        100,
        5000,
    ]
    assert [compact(v) for v in (0, 12, 1234, 2_500_000, 0.25)] == [
        "0",
        "12",
        "1.2k",
        "2.5M",
        "0.25",
    ]


def test_charts_are_escaped_svg_with_titles() -> None:
    points = [("2026-11-01", 3), ("<b>2026-11-02</b>", 10), ("2026-11-03", 0)]
    svg = str(bar_chart("Requests <per> day", points))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "Requests &lt;per&gt; day" in svg
    assert svg.count('class="bar"') == 3 and "<title>2026-11-01: 3</title>" in svg
    line = str(line_chart("Tokens", points))
    assert 'class="line"' in line and line.count('class="dot"') == 3
    empty = str(bar_chart("Nothing", [("a", 0), ("b", 0)]))
    assert "No data in this period" in empty and 'class="bar"' not in empty
    year = str(line_chart("Year", [(str(i), i) for i in range(365)]))
    assert 'class="dot"' not in year  # long series: a line without dots


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
    assert credits_text(0) == "0.00"
    assert credits_text(1_234_567_890_000) == "1,234,567.89"
    assert credits_text(1_500_000) == "1.50"
    assert credits_text(1) == "0.000001"
    assert credits_text(-2_250_000) == "-2.25"
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


def test_grid_lines_give_round_labels() -> None:
    from web.charts import grid_lines

    for top, lines in ((1, 4), (2, 4), (25, 5), (5000, 5), (0.5, 5), (10, 4)):
        assert grid_lines(nice_ceiling(top)) == lines
