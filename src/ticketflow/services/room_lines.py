"""What this process knows of each waiting room's line, so that a look at a waiting place (the
room's heartbeat, sent by every buyer every few seconds) asks the line's state nothing.

Three things make that safe:
- The line moves on (admits those whose turn came) in one refresh per room at most every
  `REFRESH_EVERY`, shared by every look of that moment (single flight); the refresh brings back
  how many places were ever taken off the line's head (`served`).
- After the opening, places leave the line only at its head and join it only at its tail, so a
  place's `ordinal` (where it stands counted from the line's first place ever: `served` plus its
  position, read together) never changes, and its position is `ordinal - served`. A place whose
  ordinal is reached is asked of the line again: admitted or skipped, which never changes after.
- Heartbeats heard here are written in one batch, with the next refresh or within
  `WRITE_HEARTBEATS_AFTER` (a timer), and the line skips a place only once unseen for longer
  than that delay allows (domain/waiting_room.py `abandon_before`).
A lost line is noticed by the next refresh, and every look of the following `REFRESH_EVERY` is
refused as the refresh was: the room stays closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.single_flight import SingleFlight
from ticketflow.adapters.waiting_rooms import Place, RoomStates, Visit
from ticketflow.domain.errors import RoomUnavailable
from ticketflow.domain.waiting_room import HEARTBEATS_LATE_BY, position_in_line

log = logging.getLogger(__name__)
REFRESH_EVERY = timedelta(milliseconds=100)
# Half the lateness the line allows for, leaving the other half for the write itself.
WRITE_HEARTBEATS_AFTER = HEARTBEATS_LATE_BY.total_seconds() / 2
MAX_PLACES = 500_000  # a bound, not an eviction policy: forgotten places are asked again

Heartbeats = Sequence[tuple[UUID, datetime]]
Refresh = Callable[[Heartbeats], Awaitable[Visit]]


@dataclass(frozen=True)
class LineCopy:
    """A room's line as this process last read it, at `at`; or the refusal it got then."""

    at: datetime
    served: int
    line: str  # its identity: places known from another line (lost since) are not in it
    lost: RoomUnavailable | None = None


@dataclass
class KnownPlace:
    event_id: UUID
    line: str
    place: Place  # as last read from the line
    ordinal: int | None  # once the order is drawn and the place still waits (module docstring)
    admission: tuple[timedelta, str] | None = None  # the token signed for it, for that session

    @property
    def turn_came(self) -> bool:
        return self.place.admitted_at is not None or self.place.abandoned


class RoomLines:
    def __init__(self, states: RoomStates, clock: Clock) -> None:
        self._states, self._clock = states, clock
        self._copies: dict[UUID, LineCopy] = {}
        self._places: dict[UUID, KnownPlace] = {}
        self._heard: dict[UUID, dict[UUID, datetime]] = {}
        self._writes_due: set[UUID] = set()
        self._refreshes: SingleFlight[UUID, LineCopy] = SingleFlight()
        self._writes: set[asyncio.Task[None]] = set()

    async def line(self, event_id: UUID, now: datetime, refresh: Refresh) -> LineCopy:
        """The room's line as of at most `REFRESH_EVERY` ago, `refresh`ed (with the heartbeats
        heard meanwhile) if older; raises the refresh's RoomUnavailable."""
        copy = self._copies.get(event_id)
        if copy is None or now - copy.at >= REFRESH_EVERY:
            copy = await self._refreshes.run(
                event_id, lambda: self._refreshed(event_id, now, refresh)
            )
        if copy.lost is not None:
            raise copy.lost
        return copy

    async def _refreshed(self, event_id: UUID, now: datetime, refresh: Refresh) -> LineCopy:
        heard = self._taken(event_id)
        had = self._copies.get(event_id)
        try:
            visit = await refresh(heard)
            copy = LineCopy(now, visit.served, visit.line)
        except RoomUnavailable as lost:
            self._put_back(event_id, heard)
            copy = LineCopy(now, had.served if had else 0, had.line if had else "", lost)
        self._copies[event_id] = copy
        return copy

    def known(self, event_id: UUID, ticket_id: UUID, line: LineCopy, opened: bool) -> Place | None:
        """The place as this process can answer it without asking the line, its position
        counted from `line`; None: ask the line (`learn` what it says)."""
        known = self._places.get(ticket_id)
        if known is None or known.event_id != event_id or known.line != line.line:
            return None
        if known.turn_came:
            return known.place
        if not opened:
            return known.place  # waiting in the pre-queue, whose order is not drawn yet
        if known.ordinal is None:
            return None  # known from before the opening: its place in the drawn order is unknown
        position = position_in_line(known.ordinal, line.served)
        return None if position is None else _at(known.place, position)

    def learn(self, event_id: UUID, visit: Visit, opened: bool) -> None:
        """What the line said of a place (`visit.place`) and its count of `served` with it."""
        place = visit.place
        if place is None:
            return
        if len(self._places) >= MAX_PLACES:
            self._places.clear()
        ordinal = visit.served + place.position if opened and place.position else None
        had = self._places.get(place.ticket_id)
        admission = had.admission if had else None
        self._places[place.ticket_id] = KnownPlace(event_id, visit.line, place, ordinal, admission)

    def admission(self, ticket_id: UUID, session: timedelta, sign: Callable[[], str]) -> str:
        """The admission token of an admitted place, signed once per place (and session)."""
        known = self._places.get(ticket_id)
        if known is not None and known.admission and known.admission[0] == session:
            return known.admission[1]
        token = sign()
        if known is not None:
            known.admission = (session, token)
        return token

    def heard(self, event_id: UUID, ticket_id: UUID, now: datetime) -> None:
        """A look at a waiting place answered here: its heartbeat, written soon (docstring)."""
        self._heard.setdefault(event_id, {})[ticket_id] = now
        if event_id not in self._writes_due:
            self._writes_due.add(event_id)
            loop = asyncio.get_running_loop()
            loop.call_later(WRITE_HEARTBEATS_AFTER, self._write_heartbeats, event_id)

    def still_there(self, event_id: UUID, ticket_id: UUID, now: datetime) -> None:
        """A look this process was too busy to answer: a heartbeat all the same, for a room
        whose line it knows (one made up by the caller, or lost, keeps nothing here)."""
        copy = self._copies.get(event_id)
        if copy is not None and copy.lost is None:
            self.heard(event_id, ticket_id, now)

    def _write_heartbeats(self, event_id: UUID) -> None:
        self._writes_due.discard(event_id)
        write = asyncio.ensure_future(self.write_heartbeats(event_id))
        self._writes.add(write)  # referenced until done: the loop keeps only weak references
        write.add_done_callback(self._writes.discard)

    async def write_heartbeats(self, event_id: UUID) -> None:
        """Write the heartbeats heard here since the last write (the timer's job)."""
        heard = self._taken(event_id)
        if not heard:
            return
        try:
            await self._states.visit(event_id, None, self._clock.now(), None, heard)
        except RoomUnavailable:
            log.info("heartbeats of waiting room %s kept for its next refresh", event_id)
            self._put_back(event_id, heard)

    def _taken(self, event_id: UUID) -> Heartbeats:
        return list(self._heard.pop(event_id, {}).items())

    def _put_back(self, event_id: UUID, heard: Heartbeats) -> None:
        pending = self._heard.setdefault(event_id, {})
        for ticket_id, seen in heard:
            pending[ticket_id] = max(seen, pending.get(ticket_id, seen))


def _at(place: Place, position: int) -> Place:
    return Place(
        place.ticket_id, place.user_id, place.joined_at, place.pre_queue, position=position
    )
