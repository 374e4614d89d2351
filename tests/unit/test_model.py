"""Domain rules without any I/O: schedules, sales windows, totals, booking transitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.domain.errors import InvalidInput, InvalidTransition, SalesClosed
from ticketflow.domain.model import (
    Actor,
    Booking,
    BookingStatus,
    Event,
    EventStatus,
    Role,
    TicketType,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def an_event(**fields: object) -> Event:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "organizer_id": uuid.uuid4(),
        "title": "Gig",
        "description": "",
        "venue": "Hall",
        "starts_at": NOW + timedelta(days=1),
        "ends_at": NOW + timedelta(days=1, hours=2),
        "sales_start": None,
        "sales_end": None,
        "status": EventStatus.PUBLISHED,
    }
    values.update(fields)
    return Event(**values)  # type: ignore[arg-type]


def a_ticket_type(event: Event, **fields: object) -> TicketType:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "event_id": event.id,
        "name": "GA",
        "price_minor": 2500,
        "currency": "EUR",
        "total": 10,
        "available": 10,
        "max_per_booking": 4,
    }
    values.update(fields)
    return TicketType(**values)  # type: ignore[arg-type]


def hold(event: Event, wanted: list[tuple[TicketType, int]], now: datetime = NOW) -> Booking:
    booking = Booking.hold(
        booking_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        event=event,
        wanted=wanted,
        now=now,
        hold_ttl=timedelta(minutes=10),
    )
    return booking


def test_event_must_end_after_it_starts() -> None:
    with pytest.raises(InvalidInput) as error:
        an_event(ends_at=NOW).check_schedule()
    assert error.value.field == "ends_at"


def test_sales_cannot_end_after_the_event() -> None:
    event = an_event(sales_end=NOW + timedelta(days=3))
    with pytest.raises(InvalidInput):
        event.check_schedule()


@pytest.mark.parametrize(
    ("fields", "now"),
    [
        ({"status": EventStatus.DRAFT}, NOW),
        ({"status": EventStatus.CANCELLED}, NOW),
        ({"sales_start": NOW + timedelta(hours=1)}, NOW),
        ({"sales_end": NOW - timedelta(seconds=1)}, NOW),
        ({}, NOW + timedelta(days=1)),  # sales close when the event starts by default
    ],
)
def test_tickets_are_not_on_sale_outside_the_window(
    fields: dict[str, object], now: datetime
) -> None:
    with pytest.raises(SalesClosed):
        an_event(**fields).check_on_sale(now)


def test_hold_prices_lines_and_sets_expiry() -> None:
    event = an_event()
    ga, vip = a_ticket_type(event), a_ticket_type(event, price_minor=9000)
    booking = hold(event, [(ga, 2), (vip, 1)])
    assert booking.total_minor == 2 * 2500 + 9000
    assert booking.hold_expires_at == NOW + timedelta(minutes=10)
    assert booking.status is BookingStatus.PENDING


def test_hold_refuses_more_than_max_per_booking() -> None:
    event = an_event()
    with pytest.raises(InvalidInput) as error:
        hold(event, [(a_ticket_type(event), 5)])
    assert error.value.field == "quantity"


def test_hold_refuses_mixed_currencies() -> None:
    event = an_event()
    with pytest.raises(InvalidInput):
        hold(event, [(a_ticket_type(event), 1), (a_ticket_type(event, currency="USD"), 1)])


def test_booking_leaves_pending_only_once() -> None:
    booking = hold(an_event(), [(a_ticket_type(an_event()), 1)])
    cancelled = booking.cancel("cancelled_by_user")
    assert (cancelled.version, booking.status) == (2, BookingStatus.CANCELLED)
    with pytest.raises(InvalidTransition):
        booking.cancel("cancelled_by_user")
    with pytest.raises(InvalidTransition):
        booking.confirm(uuid.uuid4(), [])


def test_new_total_moves_available_by_the_delta() -> None:
    ticket_type = a_ticket_type(an_event(), total=10, available=4)
    ticket_type.update({"total": 8})
    assert (ticket_type.total, ticket_type.available) == (8, 2)
    with pytest.raises(InvalidTransition):
        ticket_type.update({"total": 5})  # 6 are held or sold


def test_publish_only_from_draft_and_cancel_once() -> None:
    event = an_event(status=EventStatus.DRAFT)
    assert event.publish().version == 2
    with pytest.raises(InvalidTransition):
        event.publish()
    event.cancel()
    with pytest.raises(InvalidTransition):
        event.cancel()


def test_only_owner_manager_or_admin_manage_an_event() -> None:
    organizer = uuid.uuid4()
    assert Actor(organizer, Role.MANAGER).may_manage(organizer)
    assert Actor(uuid.uuid4(), Role.ADMIN).may_manage(organizer)
    assert not Actor(uuid.uuid4(), Role.MANAGER).may_manage(organizer)
    assert not Actor(organizer, Role.USER).may_manage(organizer)
