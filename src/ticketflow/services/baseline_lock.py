"""The seed's booking design, kept only so the benchmark can measure ours against it
(TICKETFLOW_BOOKING_ENGINE=baseline-lock): a Redis lock per ticket type around read, check, write.

Every hold of a ticket type queues on one lock (polled every 0.1 s by redis-py), and the lock has
no fencing token: a holder that outlives the 5 s lease writes over its successor's decrement. Our
engine needs neither (DESIGN.md, "The booking hot path"); never select this in production.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from redis.exceptions import LockError

from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import NotEnoughTickets, ServiceUnavailable
from ticketflow.domain.model import Booking
from ticketflow.services.bookings import checked_booking
from ticketflow.services.messagebus import Deps
from ticketflow.services.unit_of_work import UnitOfWork

LOCK_LEASE_SECONDS = 5
LOCK_WAIT_SECONDS = 10


async def hold_tickets_with_lock(command: cmd.HoldTickets, uow: UnitOfWork, deps: Deps) -> Booking:
    """Hold tickets under one Redis lock per ticket type (taken in id order): plain SELECT of
    `available`, check, plain UPDATE to the value read minus the quantity, insert, commit."""
    booking, snapshot = await checked_booking(command, deps)
    if deps.redis is None:
        raise RuntimeError("the baseline-lock engine needs TICKETFLOW_REDIS_URL")
    lines = sorted(booking.lines, key=lambda line: line.ticket_type_id)
    try:
        async with AsyncExitStack() as held_locks:
            for line in lines:
                await held_locks.enter_async_context(
                    deps.redis.lock(
                        f"lock:ticket_type:{line.ticket_type_id}",
                        timeout=LOCK_LEASE_SECONDS,
                        blocking_timeout=LOCK_WAIT_SECONDS,
                    )
                )
            async with uow:
                for line in lines:
                    ticket_type = await uow.catalog.get_ticket_type(line.ticket_type_id)
                    assert ticket_type is not None  # checked_booking found it in the catalog
                    if ticket_type.available < line.quantity:
                        name = snapshot[1][line.ticket_type_id].name
                        raise NotEnoughTickets(
                            f"Not enough '{name}' tickets left for {line.quantity}.",
                            field="quantity",
                        )
                    await uow.catalog.overwrite_available(
                        line.ticket_type_id, ticket_type.available - line.quantity
                    )
                await uow.bookings.add(booking)
                uow.record(ev.TicketsHeld.of(booking))
                await uow.commit()
    except LockError as error:  # not acquired in time, or the lease ran out before release
        raise ServiceUnavailable("Too many bookings at once; retry shortly.") from error
    return booking
