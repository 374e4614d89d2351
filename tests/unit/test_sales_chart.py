"""The dashboard's sales series and chart geometry: gapless periods, hours rolled up into days
over a long sale, bars scaled to a round top."""

from __future__ import annotations

from datetime import UTC, datetime

from ticketflow.services.sales_history import DAY, HOUR, SalesPeriod, periods
from ticketflow.web.sales_chart import HEIGHT, sales_chart

START = datetime(2026, 6, 1, 9, tzinfo=UTC)


def test_empty_hours_between_sales_are_zero_bars() -> None:
    series, step = periods({START: 3, START + 3 * HOUR: 1})
    assert step == HOUR
    assert [period.tickets for period in series] == [3, 0, 0, 1]


def test_a_sale_longer_than_two_days_is_counted_per_day() -> None:
    series, step = periods({START: 3, START + 2 * HOUR: 2, START + 3 * DAY: 4})
    assert step == DAY
    assert series[0] == SalesPeriod(START.replace(hour=0), 5)
    assert [period.tickets for period in series] == [5, 0, 0, 4]


def test_bars_stand_on_the_axis_scaled_to_a_round_top() -> None:
    chart = sales_chart(
        [SalesPeriod(START + n * HOUR, sold) for n, sold in enumerate((7, 0, 3))], HOUR
    )
    assert [tick.label for tick in chart.y_ticks] == ["0", "5", "10"]
    tallest, empty, _ = chart.bars
    assert empty.height == 0 and 0 < tallest.height < chart.bottom
    assert tallest.y + tallest.height == chart.bottom  # every bar stands on the axis
    assert chart.period == "hour" and chart.bars[0].label == "1 Jun 09:00"
    assert chart.height == HEIGHT
