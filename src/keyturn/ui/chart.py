"""A stacked bar chart of requests per day by outcome, as geometry for an inline SVG.

Rendered on the server so the page needs no charting library and no script: this module
computes rectangles and labels, the template draws them. Colours come from CSS classes
(``o-valid``, ``o-1`` ... ``o-6``), and every bar carries a ``<title>``, the chart a text
summary, and the page a plain table of the same numbers, so nothing is told by colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 640
HEIGHT = 220
LEFT = 44  # room for the y-axis labels
RIGHT = 8
TOP = 10
BOTTOM = 28  # room for the day labels
PALETTE = 6


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    label: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Series:
    outcome: str
    css: str
    total: int
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    days: tuple[date, ...]
    series: tuple[Series, ...]
    bars: tuple[Bar, ...]
    day_labels: tuple[Label, ...]
    value_labels: tuple[Label, ...]
    gridlines: tuple[float, ...]
    total: int
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at or above ``value`` (an axis maximum people read)."""
    if value <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def css_classes(outcomes: Sequence[str]) -> dict[str, str]:
    """``valid`` is always green; the rest take palette slots in the order given."""
    classes: dict[str, str] = {}
    slot = 0
    for outcome in outcomes:
        if outcome == "valid":
            classes[outcome] = "o-valid"
        else:
            classes[outcome] = f"o-{slot % PALETTE + 1}"
            slot += 1
    return classes


def build_chart(days: Sequence[date], counts: Mapping[str, Sequence[int]]) -> Chart:
    """``counts[outcome][i]`` is the number of requests with that outcome on ``days[i]``."""
    # Biggest series first in the legend; valid at the bottom of each stack.
    totals = {outcome: sum(values) for outcome, values in counts.items() if sum(values)}
    order = sorted(totals, key=lambda o: (o != "valid", -totals[o], o))
    classes = css_classes(order)
    series = tuple(Series(o, classes[o], totals[o], tuple(counts[o])) for o in order)
    n = max(len(days), 1)
    per_day = [sum(s.counts[i] for s in series) for i in range(len(days))]
    top = nice_ceiling(max(per_day, default=0))
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / n
    bar_width = max(slot * 0.7, 1.0)
    scale = plot_height / top

    bars: list[Bar] = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_width) / 2
        y = float(HEIGHT - BOTTOM)
        for s in series:
            count = s.counts[i]
            if not count:
                continue
            height = count * scale
            y -= height
            noun = "request" if count == 1 else "requests"
            bars.append(
                Bar(
                    round(x, 2),
                    round(y, 2),
                    round(bar_width, 2),
                    round(height, 2),
                    s.css,
                    f"{day.isoformat()}: {count} {noun} {s.outcome}",
                )
            )

    step = max(1, math.ceil(n / 7))  # at most about seven day labels
    day_labels = tuple(
        Label(round(LEFT + i * slot + slot / 2, 2), HEIGHT - 8, day.strftime("%b %d"))
        for i, day in enumerate(days)
        if i % step == 0
    )
    values = (0, top // 2, top) if top % 2 == 0 else (0, top)
    value_labels = tuple(
        Label(LEFT - 6, round(HEIGHT - BOTTOM - v * scale + 4, 2), str(v)) for v in values
    )
    gridlines = tuple(round(HEIGHT - BOTTOM - v * scale, 2) for v in values)
    total = sum(totals.values())
    return Chart(
        days=tuple(days),
        series=series,
        bars=tuple(bars),
        day_labels=day_labels,
        value_labels=value_labels,
        gridlines=gridlines,
        total=total,
        summary=summarize(days, series, total),
    )


def summarize(days: Sequence[date], series: Sequence[Series], total: int) -> str:
    if not days:
        return "No days to show."
    span = f"{days[0].isoformat()} to {days[-1].isoformat()}"
    if not total:
        return f"No requests recorded from {span}."
    parts = ", ".join(f"{s.total} {s.outcome}" for s in series)
    noun = "request" if total == 1 else "requests"
    return f"{total} {noun} from {span}: {parts}."
