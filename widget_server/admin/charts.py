"""Charts drawn on the server as inline SVG: no script, no CDN, nothing a strict CSP blocks.

Every text that goes into the SVG is escaped; colours come from a fixed palette. Sizes are in
viewBox units, so the chart scales to its container (phone or desktop).
"""

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


def _ticks(top: float, count: int = 4) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def line_chart(lines: list[Line], percent: bool = True, title: str = "") -> Markup:
    """Lines with their interval bands over shared x labels (days)."""
    labels = sorted({p[0] for line in lines for p in line.points})
    if not labels:
        return Markup(
            '<p class="empty">No data yet: the chart appears after the first visitors.</p>'
        )
    width, height = 640, 280
    left, right, top, bottom = 52, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max(
        (v for line in lines for p in line.points for v in (p[1], p[3]) if v is not None),
        default=0.0,
    )
    y_max = max(highest * 1.1, 1e-9)
    if percent:
        y_max = min(max(y_max, 0.05), 1.0)
    index = {label: i for i, label in enumerate(labels)}
    step = plot_w / max(len(labels) - 1, 1)

    def x(label: str) -> float:
        return left + (index[label] * step if len(labels) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - (value / y_max) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in _ticks(y_max):
        label = f"{tick:.1%}" if percent else f"{tick:,.2f}"
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y(tick))}" y2="{_fmt(y(tick))}" '
            f'stroke="#e3e3e3"/><text x="{left - 6}" y="{_fmt(y(tick) + 4)}" '
            f'text-anchor="end" font-size="11" fill="#555">{escape(label)}</text>'
        )
    shown = labels if len(labels) <= 8 else labels[:: max(len(labels) // 6, 1)]
    for label in shown:
        parts.append(
            f'<text x="{_fmt(x(label))}" y="{height - bottom + 18}" text-anchor="middle" '
            f'font-size="11" fill="#555">{escape(label[5:] if len(label) == 10 else label)}</text>'
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
    legend_x = left
    for line in lines:
        name = escape(line.name)
        parts.append(
            f'<rect x="{legend_x}" y="{height - 16}" width="12" height="12" fill="{line.color}"/>'
            f'<text x="{legend_x + 16}" y="{height - 6}" font-size="12" fill="#222">{name}</text>'
        )
        legend_x += 28 + 7 * min(len(line.name), 24)
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(bars: list[tuple[str, int, str]], title: str = "") -> Markup:
    """Horizontal bars, one per row: ``(label, value, note)``; the note sits after the bar."""
    if not bars:
        return Markup('<p class="empty">Nothing to show yet.</p>')
    row_h, label_w, width = 46, 170, 640
    height = row_h * len(bars) + 8
    bar_max = max((value for _, value, _ in bars), default=0) or 1
    plot_w = width - label_w - 150
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value, note) in enumerate(bars):
        y = 4 + i * row_h
        bar_w = max(plot_w * value / bar_max, 2 if value else 0)
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 24}" text-anchor="end" font-size="13" '
            f'fill="#222">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 8}" width="{_fmt(bar_w)}" height="24" rx="3" '
            f'fill="{color}"/>'
            f'<text x="{_fmt(label_w + bar_w + 6)}" y="{y + 25}" font-size="13" fill="#222">'
            f"{value:,}</text>"
        )
        if note:
            parts.append(
                f'<text x="{_fmt(label_w + bar_w + 6)}" y="{y + 41}" font-size="11" '
                f'fill="#666">{escape(note)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
