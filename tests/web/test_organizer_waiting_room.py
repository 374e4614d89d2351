"""The organizer's waiting room page in-process (issue 19): it shows the room as configured,
saves it as the API takes it (and the API then shows the same room), turns it off keeping its
settings, refuses bad values next to their field without changing anything, and is the event's
organizer's alone; the event's dashboard shows the room's line as it stands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ticketflow.adapters.waiting_rooms import LocalRoomStates
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role

from ..builders import API, Account, EventOnSale, account, event_on_sale
from .conftest import app_bus, csrf_token, form_post
from .staff import sign_in_as

SALE_OPENS = datetime(2026, 6, 10, 18, 0, tzinfo=UTC)  # the `clock` says 2026-06-01 12:00
PRE_QUEUE_OPENS = datetime(2026, 6, 9, 18, 0, tzinfo=UTC)
ROOM_FORM = {
    "enabled": "on",
    "opens_at": "2026-06-09T18:00",
    "admit_per_minute": "",
    "session_minutes": "10",
}
CONFIGURED = {
    "enabled": True,
    "opens_at": PRE_QUEUE_OPENS.isoformat(),
    "admit_per_minute": 120,
    "session_minutes": 15,
}


async def organizers_sale(
    browser: httpx.AsyncClient, room: dict[str, Any] | None = None
) -> tuple[Account, EventOnSale, str]:
    """An organizer signed in on `browser`, their event on sale at `SALE_OPENS` with `room`,
    and the address of its waiting room page."""
    organizer = await sign_in_as(browser, Role.MANAGER)
    sale = await event_on_sale(
        app_bus(browser), organizer, sales_start=SALE_OPENS, waiting_room=room
    )
    return organizer, sale, f"/organizer/events/{sale.event.id}/waiting-room"


async def room_in_api(browser: httpx.AsyncClient, who: Account, sale: EventOnSale) -> Any:
    shown = await browser.get(f"{API}/events/{sale.event.id}", headers=who.headers)
    assert shown.status_code == 200, shown.text
    return shown.json()["waiting_room"]


def pre_queue_opening(room: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(room["opens_at"]) if room["opens_at"] else None


async def test_the_page_shows_the_room_as_configured(browser: httpx.AsyncClient) -> None:
    _, _, page = await organizers_sale(browser, CONFIGURED)
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert 'name="enabled" value="on" aria-describedby="enabled-hint" checked' in shown.text
    assert 'name="opens_at" type="datetime-local" value="2026-06-09T18:00"' in shown.text
    assert 'name="admit_per_minute" type="number" value="120"' in shown.text
    assert 'name="session_minutes" type="number" value="15"' in shown.text
    assert "shuffled into a random order" in shown.text
    assert "Wed 10 Jun 2026, 18:00 UTC" in shown.text  # when the sale opens
    assert "never admits more buyers than there are tickets left" in shown.text


async def test_a_room_never_configured_shows_off_with_the_defaults(
    browser: httpx.AsyncClient,
) -> None:
    organizer = await sign_in_as(browser, Role.MANAGER)
    sale = await event_on_sale(app_bus(browser), organizer)  # no sales start
    shown = await browser.get(f"/organizer/events/{sale.event.id}/waiting-room")
    assert shown.status_code == 200
    assert 'aria-describedby="enabled-hint">' in shown.text  # not checked
    assert 'name="admit_per_minute" type="number" value=""' in shown.text
    assert 'name="session_minutes" type="number" value="10"' in shown.text
    assert "without one there is no pre-queue" in shown.text
    dashboard = await browser.get(f"/organizer/events/{sale.event.id}")
    assert "Waiting room off" in dashboard.text
    assert f'href="/organizer/events/{sale.event.id}/waiting-room"' in dashboard.text


@pytest.mark.parametrize(
    ("typed_rate", "admit_per_minute", "said"),
    [("", "auto", "auto rate"), ("90", 90, "90 a minute")],
)
async def test_saving_turns_the_room_on_as_the_api_shows_it(
    browser: httpx.AsyncClient, typed_rate: str, admit_per_minute: Any, said: str
) -> None:
    organizer, sale, page = await organizers_sale(browser)
    saved = await form_post(browser, page, page, **{**ROOM_FORM, "admit_per_minute": typed_rate})
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/organizer/events/{sale.event.id}"
    room = await room_in_api(browser, organizer, sale)
    assert pre_queue_opening(room) == PRE_QUEUE_OPENS
    assert {**room, "opens_at": None} == {
        "enabled": True,
        "opens_at": None,
        "admit_per_minute": admit_per_minute,
        "session_minutes": 10,
    }
    dashboard = (await browser.get(saved.headers["location"])).text
    assert (
        f"Waiting room on: {said}, session 10 min, pre-queue from Tue 9 Jun 2026, 18:00 UTC"
        in dashboard
    )


async def test_turning_the_room_off_keeps_its_settings(browser: httpx.AsyncClient) -> None:
    organizer, sale, page = await organizers_sale(browser, CONFIGURED)
    shown = await browser.get(page)
    form = {
        "enabled": "",  # an unticked box is not sent at all
        "opens_at": "2026-06-09T18:00",
        "admit_per_minute": "120",
        "session_minutes": "15",
    }
    saved = await browser.post(page, data={"csrf_token": csrf_token(shown.text), **form})
    assert saved.status_code == 303, saved.text
    room = await room_in_api(browser, organizer, sale)
    assert room["enabled"] is False
    assert (room["admit_per_minute"], room["session_minutes"]) == (120, 15)
    assert pre_queue_opening(room) == PRE_QUEUE_OPENS
    assert "Waiting room off" in (await browser.get(saved.headers["location"])).text
    assert 'name="session_minutes" type="number" value="15"' in (await browser.get(page)).text


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("session_minutes", "0", "from 1 to 120"),
        ("session_minutes", "500", "from 1 to 120"),
        ("session_minutes", "", "from 1 to 120"),
        ("admit_per_minute", "0", 'leave it empty for "auto"'),
        ("admit_per_minute", "abc", 'leave it empty for "auto"'),
        ("opens_at", "2026-06-11T09:00", "no later than the sale"),
        ("opens_at", "2026-02-30T10:00", "Enter a date and time"),
        ("opens_at", "next tuesday", "Enter a date and time"),
    ],
)
async def test_a_bad_value_is_refused_next_to_its_field_and_changes_nothing(
    browser: httpx.AsyncClient, field: str, typed: str, message: str
) -> None:
    organizer, sale, page = await organizers_sale(browser, CONFIGURED)
    before = await room_in_api(browser, organizer, sale)
    refused = await form_post(browser, page, page, **{**ROOM_FORM, field: typed})
    assert refused.status_code == 422
    assert f'id="{field}-error"' in refused.text
    assert message.replace('"', "&#34;") in refused.text
    assert f'value="{typed}"' in refused.text  # what was typed stays, to be corrected
    assert refused.text.count('class="error-text"') == 1
    assert await room_in_api(browser, organizer, sale) == before


async def test_another_managers_event_has_no_room_page_here(browser: httpx.AsyncClient) -> None:
    sale = await event_on_sale(app_bus(browser), waiting_room=CONFIGURED)
    before = await room_in_api(browser, sale.organizer, sale)
    await sign_in_as(browser, Role.MANAGER)
    page = f"/organizer/events/{sale.event.id}/waiting-room"
    shown = await browser.get(page)
    assert shown.status_code == 404  # as organizer.py's pages: another's event is not there
    refused = await browser.post(page, data={"csrf_token": csrf_token(shown.text), **ROOM_FORM})
    assert refused.status_code == 404
    assert "No such event" in refused.text
    assert await room_in_api(browser, sale.organizer, sale) == before


async def test_a_buyer_is_refused_the_room_page(browser: httpx.AsyncClient) -> None:
    sale = await event_on_sale(app_bus(browser))
    await sign_in_as(browser, Role.USER)
    page = f"/organizer/events/{sale.event.id}/waiting-room"
    shown = await browser.get(page)
    assert shown.status_code == 403
    refused = await browser.post(page, data={"csrf_token": csrf_token(shown.text), **ROOM_FORM})
    assert refused.status_code == 403
    assert "This form has expired" not in refused.text  # refused for the role, not the token
    assert await room_in_api(browser, sale.organizer, sale) is None


async def test_the_dashboard_shows_the_rooms_line_and_when_it_was_lost_until_saved(
    browser: httpx.AsyncClient,
) -> None:
    _, sale, _ = await organizers_sale(browser, {**CONFIGURED, "opens_at": None})
    bus = app_bus(browser)
    for _ in range(2):
        buyer = await account(bus)
        await bus.handle(cmd.JoinWaitingRoom(buyer.actor, sale.event.id))
    dashboard = f"/organizer/events/{sale.event.id}"
    shown = (await browser.get(dashboard)).text
    assert "2 waiting in line, 0 let through so far" in shown
    states = bus.deps.rooms.states
    assert isinstance(states, LocalRoomStates)  # this app's rooms live in its process
    states.forget_all()  # as after a restart
    assert "The room's line was lost" in (await browser.get(dashboard)).text
    page = f"/organizer/events/{sale.event.id}/waiting-room"
    assert (await form_post(browser, page, page, **ROOM_FORM)).status_code == 303
    assert "0 waiting in line, 0 let through so far" in (await browser.get(dashboard)).text
