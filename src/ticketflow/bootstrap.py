"""The one place that wires adapters to handlers; nothing happens at import time."""

from __future__ import annotations

from datetime import timedelta

from ticketflow.adapters.clock import Clock, SystemClock
from ticketflow.adapters.db import create_engine
from ticketflow.adapters.security import Passwords, Tokens
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.services import accounts, bookings, catalog
from ticketflow.services.messagebus import Deps, Handler, MessageBus

HANDLERS: dict[type[cmd.Command], Handler] = {
    cmd.RegisterUser: accounts.register_user,
    cmd.ChangeUserRole: accounts.change_user_role,
    cmd.LogIn: accounts.log_in,
    cmd.RefreshSession: accounts.refresh_session,
    cmd.LogOut: accounts.log_out,
    cmd.CreateEvent: catalog.create_event,
    cmd.UpdateEvent: catalog.update_event,
    cmd.PublishEvent: catalog.publish_event,
    cmd.CancelEvent: catalog.cancel_event,
    cmd.AddTicketType: catalog.add_ticket_type,
    cmd.UpdateTicketType: catalog.update_ticket_type,
    cmd.HoldTickets: bookings.hold_tickets,
    cmd.CancelBooking: bookings.cancel_booking,
    cmd.ReleaseExpiredHolds: bookings.release_expired_holds,
}


def build_bus(
    settings: Settings, clock: Clock | None = None, passwords: Passwords | None = None
) -> MessageBus:
    deps = Deps(
        settings=settings,
        clock=clock or SystemClock(),
        passwords=passwords or Passwords(),
        tokens=Tokens(
            settings.jwt_secret,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
    )
    return MessageBus(create_engine(settings), deps, HANDLERS)
