"""Charts as inline SVG, rendered on the server: no JavaScript, no build step, no network.

``bar_chart`` and ``line_chart`` take (label, value) points and return markup that scales to
its container (``viewBox``); axis labels use the caller's value formatter. Every bar or point
carries a ``<title>`` (the browser shows it on hover) and the chart an ``aria-label``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 210
LEFT, RIGHT, TOP, BOTTOM = 58, 10, 12, 30

Point = tuple[str, int | float]
Formatter = Callable[[float], str]


def compact(value: float) -> str:
    """1234 -> "1.2k", 2_500_000 -> "2.5M"."""
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k that is at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)


def grid_lines(top: float) -> int:
    """4 steps for tops of 1 or 2 × 10^k, 5 for 2.5 and 5 × 10^k: round labels either way."""
    mantissa = top / 10.0 ** math.floor(math.log10(top))
    return 5 if round(mantissa, 6) in (2.5, 5.0) else 4


def _frame(title: str, points: Sequence[Point], fmt: Formatter) -> tuple[list[str], float]:
    top = nice_ceiling(max((float(v) for _, v in points), default=0.0))
    lines = grid_lines(top)
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(lines + 1):
        y = TOP + plot_h - plot_h * i / lines
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(top * i / lines))}</text>"
        )
    count = len(points)
    if count:
        plot_w = WIDTH - LEFT - RIGHT
        for index in sorted({0, count // 2, count - 1}):
            x = LEFT + plot_w * (index + 0.5) / count
            anchor = (
                "start" if index == 0 and count > 1 else "end" if index == count - 1 else "middle"
            )
            if count == 1:
                anchor = "middle"
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">'
                f"{escape(points[index][0])}</text>"
            )
    return parts, top


def _empty(parts: list[str], points: Sequence[Point]) -> bool:
    if any(float(v) for _, v in points):
        return False
    parts.append(
        f'<text class="empty" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT / 2}" '
        'text-anchor="middle">No data in this period</text>'
    )
    return True


def bar_chart(title: str, points: Sequence[Point], fmt: Formatter = compact) -> Markup:
    parts, top = _frame(title, points, fmt)
    if not _empty(parts, points):
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        slot = plot_w / len(points)
        gap = min(slot * 0.2, 4.0)
        for index, (label, value) in enumerate(points):
            h = plot_h * float(value) / top
            x = LEFT + slot * index + gap / 2
            parts.append(
                f'<rect class="bar" x="{x:.2f}" y="{TOP + plot_h - h:.2f}" '
                f'width="{max(slot - gap, 0.5):.2f}" height="{h:.2f}">'
                f"<title>{escape(label)}: {escape(fmt(float(value)))}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def line_chart(title: str, points: Sequence[Point], fmt: Formatter = compact) -> Markup:
    parts, top = _frame(title, points, fmt)
    if not _empty(parts, points):
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        coords = [
            (LEFT + plot_w * (i + 0.5) / len(points), TOP + plot_h - plot_h * float(v) / top)
            for i, (_, v) in enumerate(points)
        ]
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y in coords)
        base = TOP + plot_h
        parts.append(
            f'<polygon class="area" points="{coords[0][0]:.2f},{base} {path} '
            f'{coords[-1][0]:.2f},{base}"/>'
        )
        parts.append(f'<polyline class="line" points="{path}"/>')
        if len(points) <= 62:
            for (x, y), (label, value) in zip(coords, points, strict=True):
                parts.append(
                    f'<circle class="dot" cx="{x:.2f}" cy="{y:.2f}" r="2.5">'
                    f"<title>{escape(label)}: {escape(fmt(float(value)))}</title></circle>"
                )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def meter(value: float | None, top: float = 1.0, label: str = "") -> Markup:
    """A small horizontal bar for a value in [0, top] inside a table cell (SVG attributes, not
    inline styles: the Content-Security-Policy forbids those). None draws an empty track."""
    share = 0.0 if value is None or top <= 0 else min(max(float(value) / top, 0.0), 1.0)
    text = label or ("no value" if value is None else f"{share * 100:.0f}%")
    return Markup(  # noqa: S704 - the only text is escaped
        f'<svg class="meter" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(text)}"><rect class="track" width="100" height="8" rx="2"/>'
        f'<rect class="fill" width="{share * 100:.1f}" height="8" rx="2"/></svg>'
    )


def bucket_labels(buckets: int) -> list[str]:
    """``0.0–0.1`` … ``0.9–1.0``: the score histograms' bars."""
    return [f"{i / buckets:.1f}–{(i + 1) / buckets:.1f}" for i in range(buckets)]
