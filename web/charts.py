"""Charts rendered on the server: no JavaScript, no build step, no network.

A chart is a ``<figure>``: a caption (the title and the unit), the axis labels as HTML text and
the plot as an inline SVG. Only the plot scales with its container (``viewBox`` with
``preserveAspectRatio="none"``, strokes that do not scale); the labels are ordinary text in the
page's font size, so they read the same at 390 and 1280 px wide, and the label column is as wide
as its longest label, so nothing is clipped.

Ticks (``ticks``): 0 up to the first "nice" top (1, 2, 2.5 or 5 × 10^k steps) at or above the
largest value, with at most ``TARGET_TICKS`` steps. An ``Axis`` says how raw values read: a scale
(micro-credits are shown as credits), whether raw values are whole units (counts, micro-credits:
a step is never smaller than one raw unit, so the labels never repeat), a fixed top (scores: 1)
and the unit named in the caption. A chart with no value above zero draws the axis of 0 to one
shown unit and says "No data in this period".

Every bar (and, in line charts, every point's column) has a ``<title>`` (the browser shows it on
hover) with the exact value; the plot has an ``aria-label``. The markup uses classes only: the
Content-Security-Policy forbids inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

# Plot coordinates (the SVG stretches to the container; these only fix proportions).
WIDTH, HEIGHT = 600, 200
TARGET_TICKS = 4
_MANTISSAS = (1.0, 2.0, 2.5, 5.0)

Point = tuple[str, int | float]


def _plain(value: float) -> str:
    """A number without float noise or trailing zeros: ``0.25``, ``12``, ``1,500``."""
    text = f"{Decimal(repr(value)):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def compact(value: float) -> str:
    """Axis text: ``0.000004``, ``0.25``, ``950``, ``1.5k``, ``2.5M`` (exact for tick values)."""
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return _plain(round(value / limit, 6)) + suffix
    return _plain(round(value, 9))


@dataclass(frozen=True)
class Axis:
    """How raw values read on a chart's value axis."""

    unit: str  # named in the caption: "credits", "requests", "tokens", "checks"
    scale: float = 1.0  # raw value / scale = shown value (micro-credits: 1,000,000)
    whole: bool = True  # raw values are whole units: a step is at least one raw unit
    top: float | None = None  # a fixed top, in raw units (scores: 1.0)
    exact: Callable[[float], str] = _plain  # the exact value, shown on hover

    def shown(self, raw: float) -> float:
        return raw / self.scale


REQUESTS = Axis("requests")
TOKENS = Axis("tokens")
CHECKS = Axis("checks")
SCORE = Axis("score", whole=False, top=1.0, exact=lambda raw: f"{raw:.3f}")


def nice_step(span: float, minimum: float = 0.0) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at least ``span`` and ``minimum``; a ``minimum`` above
    0 also makes the step a whole multiple of it (counts never get 2.5)."""
    target = max(span, minimum, 1e-12)
    exponent = math.floor(math.log10(target))
    while True:
        for mantissa in _MANTISSAS:
            step = mantissa * 10.0**exponent
            whole = minimum <= 0 or abs(step / minimum - round(step / minimum)) < 1e-9
            if step >= target * (1 - 1e-12) and whole:
                return step
        exponent += 1


def ticks(values: Sequence[float], axis: Axis) -> list[float]:
    """Tick values in shown units, from 0 up (see the module doc)."""
    if axis.top is not None:
        top = axis.shown(axis.top)
        return [top * i / TARGET_TICKS for i in range(TARGET_TICKS + 1)]
    largest = max((axis.shown(float(v)) for v in values), default=0.0)
    smallest_step = 1 / axis.scale if axis.whole else 0.0
    if largest <= 0:
        largest = 1.0
    step = nice_step(largest / TARGET_TICKS, smallest_step)
    count = max(1, math.ceil(largest / step - 1e-9))
    return [round(step * i, 12) for i in range(count + 1)]


def _caption(title: str, axis: Axis) -> str:
    return (
        f'<figcaption>{escape(title)} <span class="unit">({escape(axis.unit)})</span></figcaption>'
    )


def _frame(
    title: str, points: Sequence[Point], axis: Axis, shown_ticks: list[float], marks: str, kind: str
) -> Markup:
    top = shown_ticks[-1]
    grid = "".join(
        f'<line class="grid" x1="0" x2="{WIDTH}" y1="{y:.2f}" y2="{y:.2f}"/>'
        for y in (HEIGHT - HEIGHT * value / top for value in shown_ticks)
    )
    empty = not any(float(v) > 0 for _, v in points)
    labels = "".join(f"<span>{escape(compact(v))}</span>" for v in reversed(shown_ticks))
    count = len(points)
    picks = sorted({0, count // 2, count - 1}) if count else []
    x_labels = "".join(f"<span>{escape(points[i][0])}</span>" for i in picks)
    summary = f"{title}, {count} points, up to {compact(top)} {axis.unit}"
    parts = [
        f'<figure class="chart chart-{kind}">',
        _caption(title, axis),
        '<div class="chart-grid">',
        f'<div class="y-ticks" aria-hidden="true">{labels}</div>',
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        grid,
        "" if empty else marks,
        "</svg>",
    ]
    if empty:
        parts.append('<p class="chart-empty">No data in this period</p>')
    parts.append(f'<div class="x-ticks" aria-hidden="true">{x_labels}</div></div></figure>')
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _y(value: float, axis: Axis, top: float) -> float:
    return HEIGHT - HEIGHT * min(axis.shown(value) / top, 1.0)


def _hover(label: str, value: float, axis: Axis) -> str:
    return f"<title>{escape(label)}: {escape(axis.exact(value))} {escape(axis.unit)}</title>"


def bar_chart(title: str, points: Sequence[Point], axis: Axis = REQUESTS) -> Markup:
    shown_ticks = ticks([float(v) for _, v in points], axis)
    top = shown_ticks[-1]
    marks: list[str] = []
    if points:
        slot = WIDTH / len(points)
        gap = min(slot * 0.2, 6.0)
        for index, (label, value) in enumerate(points):
            y = _y(float(value), axis, top)
            marks.append(
                f'<rect class="bar" x="{slot * index + gap / 2:.2f}" y="{y:.2f}" '
                f'width="{max(slot - gap, 0.5):.2f}" height="{HEIGHT - y:.2f}">'
                f"{_hover(label, float(value), axis)}</rect>"
            )
    return _frame(title, points, axis, shown_ticks, "".join(marks), "bar")


def line_chart(title: str, points: Sequence[Point], axis: Axis = REQUESTS) -> Markup:
    shown_ticks = ticks([float(v) for _, v in points], axis)
    top = shown_ticks[-1]
    marks: list[str] = []
    if points:
        slot = WIDTH / len(points)
        coords = [(slot * (i + 0.5), _y(float(v), axis, top)) for i, (_, v) in enumerate(points)]
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y in coords)
        marks.append(
            f'<polygon class="area" points="{coords[0][0]:.2f},{HEIGHT} {path} '
            f'{coords[-1][0]:.2f},{HEIGHT}"/>'
        )
        marks.append(f'<polyline class="line" points="{path}"/>')
        for index, (label, value) in enumerate(points):
            marks.append(
                f'<rect class="hit" x="{slot * index:.2f}" y="0" width="{slot:.2f}" '
                f'height="{HEIGHT}">{_hover(label, float(value), axis)}</rect>'
            )
    return _frame(title, points, axis, shown_ticks, "".join(marks), "line")


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
