"""Where waiting rooms' lines live: Redis, shared by every app instance (each step one Lua
script, so two instances never admit the same place or hand out one turn twice), or this
process (embedded). The rules they apply are domain/waiting_room.py's; the service deciding
when to apply them is services/waiting_rooms.py.

A room exists here from when its event's room is configured (`open`) until its state is lost
(Redis flushed or restarted, the embedded process restarted). Lost, it stays lost: every step
raises RoomUnavailable (503) instead of starting an empty line that would admit people again or
out of turn. Configuring the room again opens a new, empty one.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid4

from ticketflow.domain.errors import RoomUnavailable
from ticketflow.domain.waiting_room import Allowance, admissible, in_pre_queue, place_score

LOST = "The waiting room's line was lost; it stays closed. Retry later."
RETRY_LOST = 30  # seconds: until an organizer opens the room again, retrying can't help sooner


@dataclass(frozen=True)
class Place:
    """One account's place in one room; `position` (from 1) while it waits in the line."""

    ticket_id: UUID
    user_id: UUID
    joined_at: datetime
    pre_queue: bool
    admitted_at: datetime | None = None
    abandoned: bool = False
    position: int | None = None


@dataclass(frozen=True)
class Advance:
    """Admit `due` places from the head of the line (skipping those last seen before
    `abandon_before`), no more than `unsold` tickets leave room for beside the admissions
    still outstanding (domain/waiting_room.py `admissible`; each outstanding until its session
    ends at `session_ends` or it holds), and keep `earned` minus those admitted as the
    allowance at `at`; only if the allowance is still the one read at `since` (None: none
    yet), else another request already did this round."""

    since: datetime | None
    due: int
    earned: float
    at: datetime
    abandon_before: datetime
    unsold: int
    session_ends: datetime


@dataclass(frozen=True)
class Visit:
    place: Place | None  # the place asked about (None if none was asked, or it is unknown)
    admitted_waits: list[float] = field(default_factory=list)  # seconds each admitted waited
    abandoned: int = 0  # places skipped by this visit
    waiting: int = 0  # places left in the line
    served: int = 0  # places ever taken off the head of the line (admitted or skipped)
    line: str = ""  # the line's identity: a line lost and opened again is another one


class RoomStates(Protocol):
    async def open(self, event_id: UUID, keep_for: timedelta, opening: datetime | None) -> None:
        """The room's line exists from now on; `opening` (None: open now) is kept with it, and
        decides whether a join is in the pre-queue, whatever a process's copy of the event
        says (a copy may lag a change of the opening)."""
        ...

    async def allowance(self, event_id: UUID) -> Allowance | None: ...
    async def join(
        self,
        event_id: UUID,
        user_id: UUID,
        ticket_id: UUID,
        now: datetime,
        draw: int,
        pre_queue: bool,
    ) -> Visit:
        """A place for the user (theirs already, if they have one), as a look at it would find
        it at once (`visit` without an advance): a join answers its place in the same step.
        `draw` is its place in the pre-queue's shuffle if the line's opening puts it there;
        `pre_queue` is the joining process's own judgment, for a line that kept no opening."""
        ...

    async def visit(
        self,
        event_id: UUID,
        ticket_id: UUID | None,
        now: datetime,
        advance: Advance | None,
        heartbeats: Sequence[tuple[UUID, datetime]] = (),
    ) -> Visit:
        """Write `heartbeats` (places seen at), then make the `advance`, then look at
        `ticket_id` (its heartbeat too): one atomic step."""
        ...

    async def spend(self, event_id: UUID, user_id: UUID) -> None: ...
    async def admits_hold(self, event_id: UUID, user_id: UUID) -> bool:
        """Whether the user's admission may hold (it is not spent); if so it stops being
        outstanding: the hold takes the ticket it stood for out of the unsold ones."""
        ...


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class _Room:
    line: list[tuple[int, UUID]] = field(default_factory=list)  # (score, ticket id), sorted
    scores: dict[UUID, int] = field(default_factory=dict)
    places: dict[UUID, Place] = field(default_factory=dict)
    by_user: dict[UUID, UUID] = field(default_factory=dict)
    seen: dict[UUID, datetime] = field(default_factory=dict)
    arrivals: int = 0
    allowance: Allowance | None = None
    served: int = 0
    line_id: str = field(default_factory=lambda: str(uuid4()))
    spent: set[UUID] = field(default_factory=set)
    outstanding: dict[UUID, datetime] = field(default_factory=dict)  # user: session end
    opening: tuple[datetime | None] | None = None  # as `open` last kept it (None: never)


class LocalRoomStates:
    """The embedded mode's rooms, in this process. No step awaits anything, so each runs whole
    before another request's (the event loop's turn is the lock)."""

    def __init__(self) -> None:
        self._rooms: dict[UUID, _Room] = {}

    def _room(self, event_id: UUID) -> _Room:
        room = self._rooms.get(event_id)
        if room is None:
            raise RoomUnavailable(LOST, retry_after=RETRY_LOST)
        return room

    async def open(self, event_id: UUID, keep_for: timedelta, opening: datetime | None) -> None:
        room = self._rooms.setdefault(event_id, _Room())  # kept while the process lives
        room.opening = (opening,)

    def forget_all(self) -> None:
        """This process restarted, as far as its rooms know (tests)."""
        self._rooms.clear()

    async def allowance(self, event_id: UUID) -> Allowance | None:
        return self._room(event_id).allowance

    async def join(
        self,
        event_id: UUID,
        user_id: UUID,
        ticket_id: UUID,
        now: datetime,
        draw: int,
        pre_queue: bool,
    ) -> Visit:
        room = self._room(event_id)
        if (had := room.by_user.get(user_id)) is not None:
            return await self.visit(event_id, had, now, None)
        room.arrivals += 1
        if room.opening is not None:
            pre_queue = in_pre_queue(now, room.opening[0])
        score = place_score(pre_queue, room.arrivals, draw)
        bisect.insort(room.line, (score, ticket_id))
        room.scores[ticket_id] = score
        room.places[ticket_id] = Place(ticket_id, user_id, now, pre_queue)
        room.by_user[user_id] = ticket_id
        room.seen[ticket_id] = now
        return await self.visit(event_id, ticket_id, now, None)

    async def visit(
        self,
        event_id: UUID,
        ticket_id: UUID | None,
        now: datetime,
        advance: Advance | None,
        heartbeats: Sequence[tuple[UUID, datetime]] = (),
    ) -> Visit:
        room = self._room(event_id)
        for heard, seen in heartbeats:
            if heard in room.seen:
                room.seen[heard] = max(room.seen[heard], seen)
        waits: list[float] = []
        abandoned = 0
        if advance is not None and advance.since == (room.allowance and room.allowance.at):
            room.outstanding = {u: end for u, end in room.outstanding.items() if end > now}
            due = admissible(advance.due, advance.unsold, len(room.outstanding))
            while len(waits) < due and room.line:
                _, head = room.line.pop(0)
                turn = room.places[head]
                if room.seen[head] < advance.abandon_before:
                    room.places[head] = replace(turn, abandoned=True)
                    abandoned += 1
                else:
                    room.places[head] = replace(turn, admitted_at=now)
                    room.outstanding[turn.user_id] = advance.session_ends
                    waits.append((now - turn.joined_at).total_seconds())
            room.allowance = Allowance(advance.earned - len(waits), advance.at)
            room.served += len(waits) + abandoned
        place = room.places.get(ticket_id) if ticket_id else None
        if place is not None and not (place.admitted_at or place.abandoned):
            room.seen[place.ticket_id] = now
            ahead = bisect.bisect_left(room.line, (room.scores[place.ticket_id], place.ticket_id))
            place = replace(place, position=ahead + 1)
        return Visit(place, waits, abandoned, len(room.line), room.served, room.line_id)

    async def spend(self, event_id: UUID, user_id: UUID) -> None:
        if (room := self._rooms.get(event_id)) is not None:
            room.spent.add(user_id)

    async def admits_hold(self, event_id: UUID, user_id: UUID) -> bool:
        room = self._rooms.get(event_id)
        if room is None:
            return True  # the token is signed, not stored: a lost line spends nothing
        if user_id in room.spent:
            return False
        room.outstanding.pop(user_id, None)
        return True
