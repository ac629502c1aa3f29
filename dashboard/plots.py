"""Small charts as inline SVG, drawn on the server: no JavaScript charting library, nothing fetched.

    line_chart(series, ...)   values by round, one line per series (a federation's metrics)
    bar_chart(bars, ...)      one bar per item, some flagged, an optional limit line (divergence)

Each chart is an <svg role="img"> whose <title> and <desc> say what it shows; every point and bar
carries a <title> with its figures, and the pages put the same figures in a table beside the chart.
Colours and line styles come as SVG attributes (the Content-Security-Policy forbids inline styles);
each series has its own dash pattern and marker too, so colour is never the only difference. Every
text is escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 520, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
INK, MUTED, GRID = "#1b1f24", "#4a5360", "#d8dee4"
PALETTE = ("#0b5cad", "#a4161a", "#1a6b34", "#7a4b00", "#5b2a86")
"""At least 4.5:1 against white each."""
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
MARKERS = ("circle", "square", "diamond", "triangle", "circle")
FLAGGED = "#a4161a"
LEGEND_ROW = 18
MOST_LABELS = 16
"""A bar chart with more bars names only the flagged ones under the axis."""
NORMAL = "#0b5cad"


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]
    """(x, y); y None or not finite: no point there"""


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about `count` of them)."""
    if not (_finite(low) and _finite(high)):
        return [0.0, 1.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999 and len(ticks) < 50:
        ticks.append(round(value, 12))
        value += step
        if ticks[-1] >= high:
            break
    return ticks


def number(value: float) -> str:
    """A figure as a chart shows it: short, without trailing zeros."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


def _marker(kind: str, x: float, y: float, colour: str, title: str) -> str:
    tip = f"<title>{escape(title)}</title>"
    if kind == "square":
        return (f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}">{tip}</rect>')
    if kind == "diamond":
        return (f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f} '
                f'{x - 4.5:.1f},{y:.1f}" fill="{colour}">{tip}</polygon>')
    if kind == "triangle":
        return (f'<polygon points="{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y + 3.5:.1f} {x - 4.5:.1f},{y + 3.5:.1f}" '
                f'fill="{colour}">{tip}</polygon>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{tip}</circle>'


def _frame(chart_id: str, title: str, description: str, height: int, body: list[str]) -> Markup:
    return Markup(  # noqa: S704 - every text in `body` was escaped where it was made
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>'
        + "".join(body) + "</svg>")


def _y_axis(ticks: list[float], y_of: Callable[[float], float], label: str) -> list[str]:
    parts = []
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{escape(number(tick))}</text>')
    middle = TOP + (HEIGHT - TOP - BOTTOM) / 2
    parts.append(f'<text transform="translate(14 {middle:.1f}) rotate(-90)" text-anchor="middle" '
                 f'fill="{MUTED}">{escape(label)}</text>')
    return parts


def line_chart(chart_id: str, title: str, series: Sequence[Series], x_label: str = "Round",
               y_label: str = "") -> Markup:
    """Lines of values by x (rounds: whole numbers), one per series, with a legend below."""
    shown = [s for s in series if any(_finite(y) for _, y in s.points)]
    xs = [x for s in shown for x, y in s.points if _finite(y)]
    ys = [float(y) for s in shown for _, y in s.points if _finite(y)]  # type: ignore[arg-type]
    height = HEIGHT + LEGEND_ROW * len(shown) + 6
    plot_bottom = HEIGHT - BOTTOM
    if not ys:
        return _frame(chart_id, title, "No values yet.", height, [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{MUTED}">No values yet</text>'])
    y_ticks = nice_ticks(min(ys), max(ys))
    low, high = y_ticks[0], y_ticks[-1]
    x_low, x_high = min(xs), max(xs)

    def x_of(x: float) -> float:
        if x_high == x_low:
            return LEFT + (WIDTH - LEFT - RIGHT) / 2
        return LEFT + (x - x_low) / (x_high - x_low) * (WIDTH - LEFT - RIGHT - 8) + 4

    def y_of(y: float) -> float:
        return plot_bottom - (y - low) / (high - low) * (plot_bottom - TOP)

    body = _y_axis(y_ticks, y_of, y_label)
    body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{plot_bottom}" y2="{plot_bottom}" stroke="{INK}"/>')
    whole = sorted({int(x) for x in xs})
    step = max(1, math.ceil(len(whole) / 12))
    for x in whole[::step]:
        body.append(f'<line x1="{x_of(x):.1f}" x2="{x_of(x):.1f}" y1="{plot_bottom}" y2="{plot_bottom + 4}" stroke="{INK}"/>')
        body.append(f'<text x="{x_of(x):.1f}" y="{plot_bottom + 16}" text-anchor="middle" fill="{MUTED}">{x}</text>')
    body.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2:.1f}" y="{plot_bottom + 34}" text-anchor="middle" '
                f'fill="{MUTED}">{escape(x_label)}</text>')
    summary = []
    for index, line in enumerate(shown):
        colour, dash, marker = (PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)],
                                MARKERS[index % len(MARKERS)])
        points = [(x, float(y)) for x, y in line.points if _finite(y)]  # type: ignore[arg-type]
        if len(points) > 1:
            path = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
                        + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        for x, y in points:
            body.append(_marker(marker, x_of(x), y_of(y), colour, f"{line.name}, {x_label.lower()} {x:g}: {number(y)}"))
        # the legend: one entry a row, under the axis label
        lx = LEFT
        ly = HEIGHT + 8 + LEGEND_ROW * index
        body.append(f'<line x1="{lx:.1f}" x2="{lx + 22:.1f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                    f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        body.append(_marker(marker, lx + 11, ly - 4, colour, line.name))
        body.append(f'<text x="{lx + 28:.1f}" y="{ly}" fill="{INK}">{escape(line.name)}</text>')
        summary.append(f"{line.name} from {number(points[0][1])} ({x_label.lower()} {points[0][0]:g}) "
                       f"to {number(points[-1][1])} ({x_label.lower()} {points[-1][0]:g})")
    return _frame(chart_id, title, "; ".join(summary) + ".", height, body)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    flagged: bool = False


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], limit: float | None = None,
              limit_label: str = "limit", y_label: str = "") -> Markup:
    """One bar per item; flagged bars in red and hatched, marked by a cross under them; `limit`: a
    dashed line at that value."""
    values = [b.value for b in bars if _finite(b.value)]
    if not values:
        return _frame(chart_id, title, "No values.", HEIGHT, [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{MUTED}">No values</text>'])
    top = max(values + ([limit] if _finite(limit) else []))
    y_ticks = nice_ticks(0.0, top if top > 0 else 1.0)
    low, high = y_ticks[0], y_ticks[-1]
    plot_bottom = HEIGHT - BOTTOM

    def y_of(y: float) -> float:
        return plot_bottom - (y - low) / (high - low) * (plot_bottom - TOP)

    body = [f'<defs><pattern id="{escape(chart_id)}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{FLAGGED}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern></defs>']
    body += _y_axis(y_ticks, y_of, y_label)
    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    width = min(48.0, slot * 0.7)
    for index, bar in enumerate(bars):
        if not _finite(bar.value):
            continue
        x = LEFT + slot * index + (slot - width) / 2
        y = y_of(bar.value)
        fill = f"url(#{escape(chart_id)}-hatch)" if bar.flagged else NORMAL
        tip = f"{bar.label}: {number(bar.value)}" + (" (flagged)" if bar.flagged else "")
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{max(plot_bottom - y, 0.5):.1f}" '
                    f'fill="{fill}" stroke="{FLAGGED if bar.flagged else NORMAL}"><title>{escape(tip)}</title></rect>')
        name = bar.label if len(bar.label) <= max(3, int(slot / 7)) else bar.label[:max(2, int(slot / 7) - 1)] + "…"
        centre = x + width / 2
        if len(bars) <= MOST_LABELS or bar.flagged:  # many bars: the flagged ones named (all in their titles)
            body.append(f'<text x="{centre:.1f}" y="{plot_bottom + 16}" text-anchor="middle" '
                        f'fill="{FLAGGED if bar.flagged else MUTED}">{escape(name)}</text>')
        if bar.flagged:
            body.append(f'<text x="{centre:.1f}" y="{plot_bottom + 32}" text-anchor="middle" fill="{FLAGGED}" '
                        f'font-weight="700">flagged</text>')
    body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{plot_bottom}" y2="{plot_bottom}" stroke="{INK}"/>')
    if _finite(limit):
        y = y_of(float(limit))  # type: ignore[arg-type]
        body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{INK}" '
                    f'stroke-width="1.5" stroke-dasharray="6 4"/>')
        body.append(f'<text x="{WIDTH - RIGHT}" y="{y - 5:.1f}" text-anchor="end" fill="{INK}">'
                    f'{escape(limit_label)} {escape(number(float(limit)))}</text>')  # type: ignore[arg-type]
    flagged = [b.label for b in bars if b.flagged]
    description = (f"{len(bars)} bars, highest {number(max(values))}"
                   + (f"; {limit_label} {number(float(limit))}" if _finite(limit) else "")  # type: ignore[arg-type]
                   + (f"; flagged: {', '.join(flagged)}" if flagged else "; none flagged") + ".")
    return _frame(chart_id, title, description, HEIGHT, body)
