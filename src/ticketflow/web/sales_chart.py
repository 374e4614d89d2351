"""The dashboard's sales chart as geometry: bars, axis ticks and labels in SVG user units. The
template draws it as inline SVG (server-side: no script, nothing for the CSP to block)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ticketflow.services.sales_history import HOUR, SalesPeriod

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 36  # room for the axes' labels
MOST_X_LABELS = 6
WIDEST_BAR = 48  # a few periods make a few slim bars, not slabs across the chart


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # when, as the table fallback says it
    tickets: int


@dataclass(frozen=True)
class Tick:
    at: float  # x for the time axis, y for the count axis
    label: str


@dataclass(frozen=True)
class SalesChart:
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    period: str  # "hour" or "day"
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT


def _top_of_scale(most: int) -> int:
    """A round number at least `most`: 1, 2, 5, 10, 20, 50..."""
    top, factors = 1, (2, 2.5, 2)
    for index in range(64):
        if top >= most:
            break
        top = round(top * factors[index % 3])
    return top


def sales_chart(series: list[SalesPeriod], step: timedelta) -> SalesChart:
    hourly = step == HOUR
    label_format = "%-d %b %H:%M" if hourly else "%-d %b"
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _top_of_scale(max((period.tickets for period in series), default=0))
    slot = plot_width / max(len(series), 1)
    width = min(slot * 0.8, WIDEST_BAR)
    bars = [
        Bar(
            x=LEFT + index * slot + (slot - width) / 2,
            y=TOP + plot_height * (1 - period.tickets / top),
            width=width,
            height=plot_height * period.tickets / top,
            label=period.starts_at.strftime(label_format),
            tickets=period.tickets,
        )
        for index, period in enumerate(series)
    ]
    values = (0, top // 2, top) if top % 2 == 0 else (0, top)
    y_ticks = [Tick(TOP + plot_height * (1 - value / top), str(value)) for value in values]
    every = max(1, -(-len(bars) // MOST_X_LABELS))  # ceiling division
    x_ticks = [Tick(bar.x + bar.width / 2, bar.label) for bar in bars[::every]]
    return SalesChart(bars, y_ticks, x_ticks, "hour" if hourly else "day")
