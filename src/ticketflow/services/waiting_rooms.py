"""Buyers' waiting rooms: join one, see your place (each look is also the heartbeat that keeps
it), and the admission every booking of an event with its room on must bring.

Joining is not a database row: a place lives as long as the room's line (adapters/waiting_rooms.py:
Redis, or this process), which is why losing that line closes the room instead of reopening it
empty. The room's configuration is the event's, changed through CreateEvent and UpdateEvent,
so the event store records every change of it. Nobody runs the line: whoever looks at a place
first moves it on (admits those whose turn has come), atomically, on whichever instance; each
process does so at most every 100 ms per room, and answers looks at waiting places from what it
knows of the line meanwhile (services/room_lines.py). Each such refresh reads the event's unsold
tickets too: the room never has more admissions outstanding than tickets left to sell
(domain/waiting_room.py `admissible`), and shows its waiting buyers how many are left."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow import metrics
from ticketflow.adapters.admission_tokens import AdmissionTokens
from ticketflow.adapters.catalog_snapshots import Snapshot
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.ids import new_id
from ticketflow.adapters.waiting_rooms import Advance, Place, RoomStates, Visit
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import Conflict, NotAdmitted, NotFound, RoomUnavailable
from ticketflow.domain.model import Event, EventStatus
from ticketflow.domain.waiting_room import (
    PRE_QUEUE_DRAWS,
    PlaceState,
    WaitingRoom,
    abandon_before,
    admission_state,
    admissions_due,
    admitted_per_minute,
    allowance_at,
    eta_seconds,
    in_pre_queue,
    look_again_seconds,
)
from ticketflow.services import queries
from ticketflow.services.hold_rates import HoldRates
from ticketflow.services.room_lines import Heartbeats, LineCopy, RoomLines

if TYPE_CHECKING:  # the bus's Deps holds a WaitingRooms
    from ticketflow.services.messagebus import Deps
    from ticketflow.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
KEPT_AFTER_THE_EVENT = timedelta(days=1)  # then a room's line is forgotten


@dataclass(frozen=True)
class PriceRange:
    min_minor: int
    max_minor: int
    currency: str


@dataclass(frozen=True)
class PlaceView:
    """A place as its owner sees it."""

    ticket_id: UUID
    position: int | None  # None before the opening (the pre-queue's order is drawn then)
    state: PlaceState
    eta_seconds: int
    look_again_seconds: int
    admission_token: str | None
    admission_expires_at: datetime | None  # when the admission's session ends
    price_range: PriceRange | None
    tickets_left: int | None  # unsold and not held, as of this process's last refresh


class WaitingRooms:
    def __init__(
        self,
        states: RoomStates,
        engine: AsyncEngine,
        tokens: AdmissionTokens,
        clock: Clock,
        rates: HoldRates,
        settings: Settings,
        draws: random.Random | None = None,
    ) -> None:
        self.states, self._tokens, self._clock, self._rates = states, tokens, clock, rates
        self._engine = engine
        self._tickets_left: dict[UUID, int] = {}  # per room, as its last refresh here read them
        self.lines = RoomLines(states, clock)
        self._fraction = settings.waiting_room_auto_fraction
        self._floor = settings.waiting_room_auto_floor_per_minute
        self._draws = draws or random.SystemRandom()

    async def open(self, event: Event) -> None:
        """The event's room is configured on: its line exists from now on (see RoomStates).
        If it can't be written now, the room stays closed (503) until configured again."""
        if event.room is not None:
            try:
                ends_in = event.ends_at - self._clock.now()
                keep_for = max(ends_in, timedelta()) + KEPT_AFTER_THE_EVENT
                await self.states.open(event.id, keep_for, event.sales_start)
            except RoomUnavailable:
                log.warning(
                    "waiting room of event %s not opened: its state is unreachable", event.id
                )

    async def join(self, user_id: UUID, snapshot: Snapshot) -> PlaceView:
        event, now = _found(snapshot), self._clock.now()
        room = event.room_to_join(now)
        # The line decides by the opening it keeps (`open`): this copy of the event may lag an
        # organizer's change of it, and a join drawn into the pre-queue after the opening would
        # go ahead of everyone who joined since.
        pre_queue = in_pre_queue(now, event.sales_start)
        draw = self._draws.randrange(PRE_QUEUE_DRAWS)
        per_minute, line = await self._moved_on(event, room, now)
        # The line answers the place it gives with it: one call to the line, not two.
        joined = await self.states.join(event.id, user_id, new_id(), now, draw, pre_queue)
        assert joined.place is not None
        return self._seen(user_id, snapshot, room, per_minute, now, line, joined)

    async def visit(self, user_id: UUID, snapshot: Snapshot, ticket_id: UUID) -> PlaceView:
        event, now = _found(snapshot), self._clock.now()
        if (room := event.room) is None:
            raise Conflict("This event has no waiting room on: book directly.")
        per_minute, line = await self._moved_on(event, room, now)
        opened = event.sales_start is None or now >= event.sales_start
        place = self.lines.known(event.id, ticket_id, line, opened)
        if place is None:  # not seen here yet, or its turn may have come: ask the line
            visit = await self.states.visit(event.id, ticket_id, now, None)
            return self._seen(user_id, snapshot, room, per_minute, now, line, visit)
        if not (place.admitted_at or place.abandoned):
            self.lines.heard(event.id, ticket_id, now)
        if place.user_id != user_id:
            raise NotFound("No such place in this waiting room.")
        return self._view(place, event, room, snapshot, per_minute, now)

    async def _moved_on(
        self, event: Event, room: WaitingRoom, now: datetime
    ) -> tuple[float, LineCopy]:
        """The room's rate now, and its line as this process knows it, moved on (admissions
        and skips) if this process's copy is older than a refresh allows."""
        per_minute = self.per_minute(event.id, room)

        async def moved_on(heard: Heartbeats) -> Visit:
            unsold = await self._unsold(event.id)
            advance = None
            if unsold is not None:
                self._tickets_left[event.id] = unsold
                advance = await self._advance(event, room, per_minute, now, unsold)
            visit = await self.states.visit(event.id, None, now, advance, heard)
            _measure(event.id, visit)
            return visit

        return per_minute, await self.lines.line(event.id, now, moved_on)

    async def _unsold(self, event_id: UUID) -> int | None:
        """The event's tickets neither sold nor held; None if the database can't say now:
        then the room admits nobody this round, but still writes the heartbeats it heard and
        answers looks (losing them would skip people who were there)."""
        try:
            async with self._engine.connect() as connection:
                return sum((await queries.availability(connection, event_id)).values())
        except SQLAlchemyError:
            log.warning(
                "waiting room of event %s admits nobody: its tickets left are unknown", event_id
            )
            return None

    def _seen(
        self,
        user_id: UUID,
        snapshot: Snapshot,
        room: WaitingRoom,
        per_minute: float,
        now: datetime,
        line: LineCopy,
        visit: Visit,
    ) -> PlaceView:
        """The place the line just told of (`visit`), learnt, as its owner sees it."""
        event = snapshot[0]
        opened = event.sales_start is None or now >= event.sales_start
        self.lines.learn(event.id, visit, opened)
        place = visit.place
        if place is None or place.user_id != user_id:
            raise NotFound("No such place in this waiting room.")
        return self._view(place, event, room, snapshot, per_minute, now)

    async def line_now(self, event_id: UUID) -> Visit | None:
        """The room's line as it stands (how many wait, how many were let through), changing
        nothing; None if it was lost (the room is closed until configured again)."""
        try:
            return await self.states.visit(event_id, None, self._clock.now(), None)
        except RoomUnavailable:
            return None

    def still_there(self, event_id: UUID, ticket_id: UUID) -> None:
        """A look at a place that this process was too busy to answer (api/load_shedding.py):
        its heartbeat all the same. Written with the others; the line keeps it only for a place
        it has (a made-up ticket id keeps nothing)."""
        self.lines.still_there(event_id, ticket_id, self._clock.now())

    def per_minute(self, event_id: UUID, room: WaitingRoom) -> float:
        auto = room.admit_per_minute is None
        paced = self._rates.pace(event_id, self._clock.now()) if auto else None
        return admitted_per_minute(room.admit_per_minute, paced, self._fraction, self._floor)

    async def _advance(
        self, event: Event, room: WaitingRoom, per_minute: float, now: datetime, unsold: int
    ) -> Advance | None:
        """This visit's round of admissions: none before the sale opens, none past `unsold`."""
        opening = event.sales_start
        if event.status is not EventStatus.PUBLISHED or (opening and now < opening):
            return None
        previous = await self.states.allowance(event.id)
        grown = allowance_at(previous, now, opening, per_minute)
        since = previous.at if previous else None
        due = admissions_due(grown)
        return Advance(
            since, due, grown.earned, grown.at, abandon_before(now), unsold, now + room.session
        )

    def _view(
        self,
        place: Place,
        event: Event,
        room: WaitingRoom,
        snapshot: Snapshot,
        per_minute: float,
        now: datetime,
    ) -> PlaceView:
        token, expires_at, position, eta, look_again = None, None, None, 0, 0
        if place.abandoned:
            state = PlaceState.EXPIRED
        elif place.admitted_at is not None:
            state = admission_state(place.admitted_at, room.session, now)
            if state is PlaceState.ADMITTED:
                admitted_at = place.admitted_at
                expires_at = admitted_at + room.session
                token = self.lines.admission(
                    place.ticket_id,
                    room.session,
                    lambda: self._tokens.issue(
                        place.user_id, event.id, place.ticket_id, admitted_at, room.session
                    ),
                )
        else:
            state = PlaceState.WAITING
            # A place the line put after the opening has its position, whatever this copy of
            # the event says (it may lag a change of the opening: the line decides, see `join`).
            opened = event.sales_start is None or now >= event.sales_start
            position = place.position if opened or not place.pre_queue else None
            eta = eta_seconds(position, per_minute, now, event.sales_start)
            # The draw stays hidden until the opening, but paces the looks: told a quarter of
            # the wait its drawn place gives it, the pre-queue looks again after the opening as
            # its turns come near, not all of it within seconds of the opening, on top of the
            # first admitted buyers' holds (bench/README.md, the room phase). Its place as the
            # line answered its join: later joiners may draw places ahead, never behind, so it
            # is never told to look later than its turn warrants.
            drawn = eta_seconds(place.position, per_minute, now, event.sales_start)
            look_again = look_again_seconds(state, drawn)
        return PlaceView(
            place.ticket_id,
            position,
            state,
            eta,
            look_again,
            token,
            expires_at,
            _price_range(snapshot),
            self._tickets_left.get(event.id),
        )

    async def check_admission(self, event: Event, command: cmd.HoldTickets) -> None:
        """Refuse (403 not-admitted) a hold of an event whose room is on, unless it brings a
        valid admission of its buyer for this event, in its session and not spent. Both
        booking doors come here (services/bookings.py `checked_booking`): the token is checked
        in this process, the spent mark asked of the room's state."""
        if event.room is None:
            return
        user_id = command.actor.user_id
        self._tokens.admission(command.admission, user_id, event.id)
        if not await self.states.admits_hold(event.id, user_id):
            raise NotAdmitted("This admission is spent: a booking made with it was paid.")

    async def spend(self, event: Event | None, user_id: UUID) -> None:
        """A booking of `user_id`'s on `event` was paid: their admission can't hold again."""
        if event is not None and event.room is not None:
            await self.states.spend(event.id, user_id)


def _found(snapshot: Snapshot) -> Event:
    if snapshot[0].status is EventStatus.DRAFT:
        raise NotFound("No such event.")
    return snapshot[0]


def _price_range(snapshot: Snapshot) -> PriceRange | None:
    """What the tickets cost, shown while waiting ("transparency"): the cheapest and dearest."""
    types = sorted(snapshot[1].values(), key=lambda tt: tt.price_minor)
    if not types:
        return None
    return PriceRange(types[0].price_minor, types[-1].price_minor, types[0].currency)


def _measure(event_id: UUID, visit: Visit) -> None:
    label = str(event_id)
    metrics.ROOM_WAITING.labels(label).set(visit.waiting)
    if visit.admitted_waits:
        metrics.ROOM_ADMITTED.labels(label).inc(len(visit.admitted_waits))
        for waited in visit.admitted_waits:
            metrics.ROOM_WAIT.labels(label).observe(waited)
    if visit.abandoned:
        metrics.ROOM_ABANDONED.labels(label).inc(visit.abandoned)


async def join_waiting_room(command: cmd.JoinWaitingRoom, uow: UnitOfWork, deps: Deps) -> PlaceView:
    snapshot = await deps.catalog.get(command.event_id)
    return await deps.rooms.join(command.actor.user_id, _known(snapshot))


async def visit_place(command: cmd.VisitPlace, uow: UnitOfWork, deps: Deps) -> PlaceView:
    snapshot = await deps.catalog.get(command.event_id)
    return await deps.rooms.visit(command.actor.user_id, _known(snapshot), command.ticket_id)


def _known(snapshot: Snapshot | None) -> Snapshot:
    if snapshot is None:
        raise NotFound("No such event.")
    return snapshot
