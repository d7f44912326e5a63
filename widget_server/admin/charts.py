"""Charts drawn on the server as inline SVG: no script, no CDN, nothing a strict CSP blocks.

Every text that goes into the SVG is escaped; colours come from a fixed palette. Sizes are in
viewBox units, so the chart scales to its container (phone or desktop).
"""

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#3366cc", "#dc6b19", "#2a9d8f", "#9c27b0", "#c0392b", "#6d8b00", "#795548", "#0097a7")


@dataclass(frozen=True)
class Line:
    """One variant's series: ``points`` are ``(x_label, value, lower, upper)``."""

    name: str
    points: list[tuple[str, float | None, float | None, float | None]]
    color: str


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _nice_ticks(highest: float, count: int = 4) -> list[float]:
    """Round tick values from 0 up to at least ``highest`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    raw = max(highest, 1e-9) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(highest / step - 1e-9) + 1)]


@dataclass(frozen=True)
class Size:
    """Chart geometry in viewBox units; the compact one suits phones (larger type, fewer labels)."""

    width: int
    height: int
    font: int
    x_labels: int


WIDE = Size(640, 280, 11, 8)
COMPACT = Size(340, 250, 13, 4)


def line_chart(
    lines: list[Line], percent: bool = True, title: str = "", size: Size = WIDE
) -> Markup:
    """Lines with their interval bands over shared x labels (days)."""
    labels = sorted({p[0] for line in lines for p in line.points})
    if not labels:
        return Markup(
            '<p class="empty">No data yet: the chart appears after the first visitors.</p>'
        )
    width, height, font = size.width, size.height, size.font
    left, right, top, bottom = 4 * font + 8, 3 * font, 12, 3 * font + 14
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max(
        (v for line in lines for p in line.points for v in (p[1], p[3]) if v is not None),
        default=0.0,
    )
    if percent:
        highest = min(max(highest, 0.05), 1.0)
    ticks = _nice_ticks(highest)
    y_max = ticks[-1] or 1e-9
    index = {label: i for i, label in enumerate(labels)}
    step = plot_w / max(len(labels) - 1, 1)

    def x(label: str) -> float:
        return left + (index[label] * step if len(labels) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - (value / y_max) * plot_h

    parts = [_svg_open(width, height, title)]
    for tick in ticks:
        if not percent:
            label = f"{tick:,.2f}"
        else:
            label = f"{tick:.0%}" if y_max >= 0.1 else f"{tick:.1%}"
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y(tick))}" y2="{_fmt(y(tick))}" '
            f'stroke="#e3e3e3"/><text x="{left - 6}" y="{_fmt(y(tick) + font / 3)}" '
            f'text-anchor="end" font-size="{font}" fill="#555">{escape(label)}</text>'
        )
    every = -(-len(labels) // size.x_labels)
    shown = labels[::-1][::every][::-1]  # counted from the end: the latest day is labelled
    for label in shown:
        parts.append(
            f'<text x="{_fmt(x(label))}" y="{top + plot_h + font + 6}" text-anchor="middle" '
            f'font-size="{font}" fill="#555">'
            f"{escape(label[5:] if len(label) == 10 else label)}</text>"
        )
    for line in lines:
        band = [(p[0], p[2], p[3]) for p in line.points if p[2] is not None and p[3] is not None]
        if len(band) > 1:
            upper = " ".join(f"{_fmt(x(lb))},{_fmt(y(hi))}" for lb, _, hi in band)
            lower = " ".join(f"{_fmt(x(lb))},{_fmt(y(lo))}" for lb, lo, _ in reversed(band))
            parts.append(
                f'<polygon points="{upper} {lower}" fill="{line.color}" fill-opacity="0.15" '
                f'stroke="none"/>'
            )
        elif len(band) == 1:
            lb, lo, hi = band[0]
            parts.append(
                f'<line x1="{_fmt(x(lb))}" x2="{_fmt(x(lb))}" y1="{_fmt(y(lo))}" '
                f'y2="{_fmt(y(hi))}" stroke="{line.color}" stroke-opacity="0.35" stroke-width="8"/>'
            )
        points = [(p[0], p[1]) for p in line.points if p[1] is not None]
        if len(points) > 1:
            path = " ".join(f"{_fmt(x(lb))},{_fmt(y(v))}" for lb, v in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{line.color}" stroke-width="2.5"/>'
            )
        for lb, v in points[-1:] if len(points) > 1 else points:
            parts.append(
                f'<circle cx="{_fmt(x(lb))}" cy="{_fmt(y(v))}" r="3.5" fill="{line.color}"/>'
            )
    legend_x, legend_y = left, height - 6
    for line in lines:
        name = escape(line.name)
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y - font}" width="{font}" height="{font}" '
            f'fill="{line.color}"/><text x="{legend_x + font + 4}" y="{legend_y}" '
            f'font-size="{font + 1}" fill="#222">{name}</text>'
        )
        legend_x += font * 2 + int(0.6 * (font + 1) * min(len(line.name), 24))
    parts.append("</svg>")
    return Markup("".join(parts))


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    )


#: Average glyph width in ems of the admin page's sans-serif (a little generous), to wrap SVG text,
#: which does not wrap itself and is clipped at the chart's edge.
GLYPH_EM = 0.6


def _wrap(text: str, width: float, font: float) -> list[str]:
    """``text`` in lines of at most ``width`` viewBox units, broken at spaces (a longer word,
    such as a stage key, is cut into pieces)."""
    most = max(int(width / (font * GLYPH_EM)), 1)
    words = [w[i : i + most] for w in text.split(" ") for i in range(0, max(len(w), 1), most)]
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= most:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _text_lines(lines: list[str], x: float, y: float, step: float, attrs: str) -> str:
    return "".join(
        f'<text x="{_fmt(x)}" y="{_fmt(y + i * step)}" {attrs}>{escape(line)}</text>'
        for i, line in enumerate(lines)
    )


def bar_chart(bars: list[tuple[str, int, str]], title: str = "", size: Size = WIDE) -> Markup:
    """Horizontal bars, one per row: ``(label, value, note)``.

    Wide: the label left of the bar, the note under the bar. Compact: the label above the bar,
    the note under it, so the bars keep the whole width of a phone. Labels and notes wrap at
    spaces to stay inside the chart (SVG text would be cut off at its edge).
    """
    if not bars:
        return Markup('<p class="empty">Nothing to show yet.</p>')
    compact = size.width < 480
    font = size.font
    note_font = font - 2 if compact else 11
    label_font = font if compact else 13
    line_h = note_font + 4
    width = size.width
    label_w = 0 if compact else 170
    value_room = 7 * font
    plot_w = width - label_w - value_room
    bar_max = max((value for _, value, _ in bars), default=0) or 1
    rows = []
    for label, value, note in bars:
        label_lines = _wrap(label, width if compact else label_w - 8, label_font)
        note_lines = _wrap(note, width - label_w, note_font) if note else []
        label_h = len(label_lines) * (label_font + 3) if compact else 0
        bar_y = label_h + 4 if compact else 8
        note_y = bar_y + font + 10 + note_font + 4
        height = max(note_y + (len(note_lines) - 1) * line_h + 10, 46)
        if not compact:
            height = max(height, 24 + (len(label_lines) - 1) * (label_font + 3) + 10)
        rows.append((label_lines, value, note_lines, bar_y, note_y, height))
    parts = [_svg_open(width, sum(row[-1] for row in rows) + 8, title)]
    top = 4
    for i, (label_lines, value, note_lines, bar_y, note_y, height) in enumerate(rows):
        bar_w = max(plot_w * value / bar_max, 2 if value else 0)
        color = PALETTE[i % len(PALETTE)]
        if compact:
            parts.append(
                _text_lines(
                    label_lines,
                    0,
                    top + label_font,
                    label_font + 3,
                    f'font-size="{label_font}" font-weight="600" fill="#222"',
                )
            )
        else:
            parts.append(
                _text_lines(
                    label_lines,
                    label_w - 8,
                    top + 24,
                    label_font + 3,
                    f'text-anchor="end" font-size="{label_font}" fill="#222"',
                )
            )
        parts.append(
            f'<rect x="{label_w}" y="{top + bar_y}" width="{_fmt(bar_w)}" height="{font + 10}" '
            f'rx="3" fill="{color}"/><text x="{_fmt(label_w + bar_w + 6)}" '
            f'y="{top + bar_y + font + 3}" font-size="{font}" fill="#222">{value:,}</text>'
        )
        parts.append(
            _text_lines(
                note_lines, label_w, top + note_y, line_h, f'font-size="{note_font}" fill="#666"'
            )
        )
        top += height
    parts.append("</svg>")
    return Markup("".join(parts))


def responsive(draw, *args, **kwargs) -> Markup:
    """The chart twice, wide and compact; the stylesheet shows the one that fits the screen."""
    return Markup(
        f'<div class="chart-wide">{draw(*args, size=WIDE, **kwargs)}</div>'
        f'<div class="chart-compact">{draw(*args, size=COMPACT, **kwargs)}</div>'
    )
