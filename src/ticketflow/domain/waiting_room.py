"""The waiting room's rules: its configuration, the order of the line, how many to admit and
when, which places are abandoned, what a place shows its owner. No I/O: the room's state lives
in adapters/waiting_rooms.py, which applies these rules atomically."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ticketflow.domain.errors import InvalidInput, NotAdmitted, RoomNotOpen

AUTO = "auto"
# A waiting place whose owner has not asked about it for this long is skipped when its turn comes:
# its owner left, and the line must not stall behind them.
ABANDONED_AFTER = timedelta(seconds=60)
# Pre-queue places are ordered by a draw in [0, PRE_QUEUE_DRAWS); places taken after the opening
# come after all of them, by arrival. Both fit a Redis sorted-set score (a double) exactly.
PRE_QUEUE_DRAWS = 2**52
# Admissions earned while nobody waits are kept for at most this long a burst.
BURST = timedelta(seconds=10)


class PlaceState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    EXPIRED = "expired"  # its session ended, or it was abandoned: never admitted (again)


@dataclass(frozen=True)
class WaitingRoom:
    """An event's waiting room, as its organizer configured it. The pre-queue opens at
    `opens_at` (None: as soon as the event is published); the sale opens at the event's
    `sales_start`, when the pre-queue is shuffled; `admit_per_minute` None is "auto"."""

    enabled: bool = True
    opens_at: datetime | None = None
    admit_per_minute: int | None = None
    session_minutes: int = 10

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> WaitingRoom:
        """From its JSON form (the API's and the stored one); `admit_per_minute` "auto"."""
        rate = data.get("admit_per_minute", AUTO)
        opens_at = data.get("opens_at")
        room = cls(
            enabled=bool(data.get("enabled", True)),
            opens_at=datetime.fromisoformat(opens_at) if isinstance(opens_at, str) else opens_at,
            admit_per_minute=None if rate in (AUTO, None) else int(rate),
            session_minutes=int(data.get("session_minutes", 10)),
        )
        room.check_rules()
        return room

    def data(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
            "admit_per_minute": AUTO if self.admit_per_minute is None else self.admit_per_minute,
            "session_minutes": self.session_minutes,
        }

    def check_rules(self, sales_start: datetime | None = None) -> None:
        if self.admit_per_minute is not None and self.admit_per_minute < 1:
            raise InvalidInput(
                'Admit at least one buyer a minute (or "auto").',
                field="waiting_room.admit_per_minute",
            )
        if not 1 <= self.session_minutes <= 120:
            raise InvalidInput(
                "A session lasts 1 to 120 minutes.", field="waiting_room.session_minutes"
            )
        if self.opens_at and sales_start and self.opens_at > sales_start:
            raise InvalidInput(
                "The waiting room must open no later than the sale (sales_start).",
                field="waiting_room.opens_at",
            )

    @property
    def session(self) -> timedelta:
        return timedelta(minutes=self.session_minutes)

    def check_joinable(self, now: datetime) -> None:
        if self.opens_at and now < self.opens_at:
            raise RoomNotOpen(f"The waiting room opens at {self.opens_at.isoformat()}.")


def in_pre_queue(joined_at: datetime, opening: datetime | None) -> bool:
    """Whether a place taken at `joined_at` is in the pre-queue: taken before the sale opens."""
    return opening is not None and joined_at < opening


def place_score(pre_queue: bool, arrival: int, draw: int) -> int:
    """Where a place stands in the line (lower first). The pre-queue is a uniform shuffle: each
    place's draw is independent and uniform, so every order of them is equally likely, and
    arriving first gains nothing. After the opening, places follow by `arrival` (1, 2, ...)."""
    return draw if pre_queue else PRE_QUEUE_DRAWS + arrival


@dataclass(frozen=True)
class Allowance:
    """Admissions earned at `at` but not yet given (a token bucket that fills at the rate)."""

    earned: float
    at: datetime


def allowance_at(
    previous: Allowance | None, now: datetime, opening: datetime | None, per_minute: float
) -> Allowance:
    """What `previous` has grown to by `now` at `per_minute`, counted from the sale's opening
    (from `now` on a first call without one); at most a `BURST` worth is kept."""
    start = previous or Allowance(0.0, opening or now)
    if now <= start.at:
        return start
    grown = start.earned + per_minute * (now - start.at).total_seconds() / 60
    return Allowance(min(grown, max(1.0, per_minute * BURST.total_seconds() / 60)), now)


def admissions_due(allowance: Allowance) -> int:
    return math.floor(allowance.earned)


def admissible(due: int, unsold: int, outstanding: int) -> int:
    """How many of the `due` admissions to give now: never more admissions outstanding
    (admitted, not yet holding, session not over) than tickets left to sell. A room that
    admits past its inventory lets the admitted race each other for the last tickets, and who
    looks and books fastest, not the line's order, decides who buys. One ticket is counted
    per admission (a buyer of several leaves later admissions to find it sold out)."""
    return max(0, min(due, unsold - outstanding))


def admitted_per_minute(
    fixed: int | None, measured_holds_per_second: float | None, fraction: float, floor: float
) -> float:
    """The room's rate: the organizer's, or "auto": `fraction` of the holds the engine serves
    per second (measured), never below `floor` a minute (nothing measured yet, or an idle
    engine, must not close the room)."""
    if fixed is not None:
        return float(fixed)
    if not measured_holds_per_second:
        return floor
    return max(floor, fraction * measured_holds_per_second * 60)


def abandoned(last_seen: datetime, now: datetime) -> bool:
    return now - last_seen >= ABANDONED_AFTER


# Each process writes the heartbeats it heard in one batch, at most this long after hearing
# them (services/room_lines.py), so a place is skipped only once unseen for ABANDONED_AFTER
# and this: a look heard but not yet written never counts as absence.
HEARTBEATS_LATE_BY = timedelta(seconds=1)


def abandon_before(now: datetime) -> datetime:
    """Places last seen (as written) before this are abandoned when their turn comes."""
    return now - ABANDONED_AFTER - HEARTBEATS_LATE_BY


def position_in_line(ordinal: int, served: int) -> int | None:
    """A place's position (from 1) in a line whose first `served` places were taken off its
    head, if it is still there: `ordinal` is where it stands counted from the line's first
    place ever. None: its turn came (admitted or skipped), or the count is newer than what is
    known of the place; either way only the line itself can tell."""
    return ordinal - served if ordinal > served else None


def admission_state(admitted_at: datetime, session: timedelta, now: datetime) -> PlaceState:
    return PlaceState.ADMITTED if now < admitted_at + session else PlaceState.EXPIRED


def eta_seconds(
    position: int | None, per_minute: float, now: datetime, opening: datetime | None
) -> int:
    """Seconds until a waiting place's turn: until the opening, then its position at the rate."""
    until_opening = max(0.0, (opening - now).total_seconds()) if opening else 0.0
    ahead = (position or 0) * 60 / per_minute if per_minute > 0 else 0.0
    return math.ceil(until_opening + ahead)


# How often a waiting client should look (its heartbeat): never less than this, and never
# so seldom that a place following the advice could be taken for abandoned.
LOOK_AGAIN_MIN = timedelta(seconds=2)
LOOK_AGAIN_MAX = ABANDONED_AFTER / 2


def look_again_seconds(state: PlaceState, eta: int) -> int:
    """When a place's owner should look next: a quarter of its wait, between 2 s and half the
    abandonment time. Far back in a long line people look seldom, so the line's heartbeats
    cost what the app can spare, while a place near its turn is told quickly; 0 once out."""
    if state is not PlaceState.WAITING:
        return 0
    low, high = LOOK_AGAIN_MIN.total_seconds(), LOOK_AGAIN_MAX.total_seconds()
    return int(min(high, max(low, eta / 4)))


def unadmitted_refusal(room: WaitingRoom | None, admitted: bool) -> NotAdmitted | None:
    """The refusal of a hold by the transaction that would make it, which reads the event's
    `room` (on: not None) as it is now: a hold checked against a copy of the event taken before
    its room was turned on brought no admission (`admitted` False), and must not slip through."""
    if room is None or admitted:
        return None
    return NotAdmitted(
        "The event's waiting room was just turned on: join it (POST /events/{id}/queue) and "
        "send the admission token in the TicketFlow-Admission header."
    )
