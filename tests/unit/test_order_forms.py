"""The order form's pickers: what each may offer a buyer, and the lines a sent form asks for."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.datastructures import FormData

from ticketflow.domain.errors import InvalidInput
from ticketflow.web.order_forms import asked_lines, order_choices

GENERAL, VIP = uuid.uuid4(), uuid.uuid4()


def _event(event_cap: int | None = None, vip_cap: int | None = None) -> dict[str, Any]:
    types = [
        {"id": GENERAL, "available": 100, "max_per_booking": 10, "max_per_buyer": None},
        {"id": VIP, "available": 100, "max_per_booking": 4, "max_per_buyer": vip_cap},
    ]
    return {"max_tickets_per_buyer": event_cap, "ticket_types": types}


def _most(event: dict[str, Any], available: dict[Any, int], held: dict[Any, int]) -> list[int]:
    return [choice.most for choice in order_choices(event, available, held)]


def test_a_picker_offers_no_more_than_one_booking_may_take_nor_than_are_left() -> None:
    assert _most(_event(), {GENERAL: 100, VIP: 2}, {}) == [10, 2]


def test_the_caps_on_one_buyer_count_what_they_hold_already() -> None:
    assert _most(_event(event_cap=6), {}, {GENERAL: 4}) == [2, 2]
    assert _most(_event(vip_cap=3), {}, {VIP: 2}) == [10, 1]
    assert _most(_event(event_cap=6), {}, {GENERAL: 6, VIP: 1}) == [0, 0]


def test_a_sold_out_type_offers_nothing() -> None:
    [general, vip] = order_choices(_event(), {GENERAL: 0, VIP: 5}, {})
    assert (general.available, general.most) == (0, 0)
    assert vip.most == 4


def test_a_sent_form_asks_for_the_pickers_above_zero() -> None:
    form = FormData([("csrf_token", "x"), (f"qty-{GENERAL}", "2"), (f"qty-{VIP}", "0")])
    assert asked_lines(form) == {GENERAL: 2}


@pytest.mark.parametrize("quantity", ["two", "-1", "1.5", "1001"])
def test_a_quantity_that_is_no_whole_number_in_range_is_refused(quantity: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        asked_lines(FormData([(f"qty-{GENERAL}", quantity)]))
    assert refused.value.field == "quantity"


def test_a_form_asking_for_nothing_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        asked_lines(FormData([(f"qty-{GENERAL}", "0"), (f"qty-{VIP}", "")]))
