"""When a hold batch's allocation, made from an unlocked read, still stands on the locked row."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ticketflow.domain.model import EventStatus
from ticketflow.services.hold_batcher import allocation_stands

from .test_model import NOW, a_ticket_type, an_event

EVENT = an_event()
TYPE = a_ticket_type(EVENT, available=10)
READ = (EVENT, TYPE)


def _fresh(**ticket_type: object) -> tuple[object, object]:
    return EVENT, replace(TYPE, **ticket_type)  # type: ignore[arg-type]


def test_others_selling_meanwhile_is_fine_while_enough_is_left() -> None:
    assert allocation_stands(READ, _fresh(available=4), 4, False, NOW)
    assert not allocation_stands(READ, _fresh(available=3), 4, False, NOW)


def test_a_refusal_for_too_few_tickets_needs_the_exact_count_it_was_judged_on() -> None:
    assert allocation_stands(READ, _fresh(), 10, True, NOW)
    assert not allocation_stands(READ, _fresh(available=9), 4, True, NOW)  # one came back


def test_any_other_change_to_the_ticket_type_or_its_event_means_allocating_again() -> None:
    assert not allocation_stands(READ, _fresh(price_minor=9900), 1, False, NOW)
    assert not allocation_stands(READ, _fresh(max_per_booking=1), 1, False, NOW)
    assert not allocation_stands(READ, _fresh(version=2), 1, False, NOW)
    cancelled = replace(EVENT, status=EventStatus.CANCELLED, version=2)
    assert not allocation_stands(READ, (cancelled, TYPE), 1, False, NOW)
    assert not allocation_stands(READ, None, 1, False, NOW)
    assert not allocation_stands(None, READ, 1, False, NOW)


def test_sales_that_closed_meanwhile_mean_allocating_again() -> None:
    closing = an_event(sales_end=NOW + timedelta(seconds=1))
    read = (closing, a_ticket_type(closing))
    assert allocation_stands(read, read, 1, False, NOW)
    assert not allocation_stands(read, read, 1, False, NOW + timedelta(seconds=1))
