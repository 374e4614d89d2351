"""The one place that wires adapters to handlers; nothing happens at import time."""

from __future__ import annotations

from datetime import timedelta

from cashews import Cache

from ticketflow.adapters.admission_tokens import AdmissionTokens
from ticketflow.adapters.catalog_snapshots import CatalogSnapshots
from ticketflow.adapters.clock import Clock, SystemClock
from ticketflow.adapters.db import create_engine
from ticketflow.adapters.payment_gateway import HttpPaymentGateway, PaymentGateway
from ticketflow.adapters.redis_client import create_redis
from ticketflow.adapters.revoked_sessions import revoked_sessions_for
from ticketflow.adapters.security import Passwords, SigningKeys, Tokens
from ticketflow.adapters.soldout_marks import SoldOutMarks
from ticketflow.adapters.waiting_rooms import LocalRoomStates
from ticketflow.adapters.waiting_rooms_redis import RedisRoomStates
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.services import (
    account_passwords,
    accounts,
    bookings,
    catalog,
    check_ins,
    payments,
    waiting_rooms,
    webhook_endpoints,
)
from ticketflow.services.catalog_views import CatalogViews
from ticketflow.services.hold_batcher import HoldBatcher
from ticketflow.services.hold_rates import HoldRates
from ticketflow.services.messagebus import Deps, Handler, MessageBus
from ticketflow.services.waiting_rooms import WaitingRooms

HANDLERS: dict[type[cmd.Command], Handler] = {
    cmd.RegisterUser: accounts.register_user,
    cmd.UpdateUser: accounts.update_user,
    cmd.LogIn: accounts.log_in,
    cmd.RefreshSession: accounts.refresh_session,
    cmd.LogOut: accounts.log_out,
    cmd.LogOutEverywhere: accounts.log_out_everywhere,
    cmd.ChangePassword: account_passwords.change_password,
    cmd.RequestPasswordReset: account_passwords.request_password_reset,
    cmd.ResetPassword: account_passwords.reset_password,
    cmd.CreateEvent: catalog.create_event,
    cmd.UpdateEvent: catalog.update_event,
    cmd.PublishEvent: catalog.publish_event,
    cmd.CancelEvent: catalog.cancel_event,
    cmd.AddTicketType: catalog.add_ticket_type,
    cmd.UpdateTicketType: catalog.update_ticket_type,
    cmd.HoldTickets: bookings.hold_tickets,
    cmd.JoinWaitingRoom: waiting_rooms.join_waiting_room,
    cmd.VisitPlace: waiting_rooms.visit_place,
    cmd.CancelBooking: bookings.cancel_booking,
    cmd.ReleaseExpiredHolds: bookings.release_expired_holds,
    cmd.PayForBooking: payments.pay_for_booking,
    cmd.RefundBooking: payments.refund_booking,
    cmd.ApplyProviderEvent: payments.apply_provider_event,
    cmd.ReconcilePayments: payments.reconcile_payments,
    cmd.CheckInTicket: check_ins.check_in_ticket,
    cmd.RegisterWebhook: webhook_endpoints.register_webhook,
    cmd.DeleteWebhook: webhook_endpoints.delete_webhook,
}


def build_bus(
    settings: Settings,
    clock: Clock | None = None,
    passwords: Passwords | None = None,
    payments: PaymentGateway | None = None,
) -> MessageBus:
    """Wire the app; tests pass a clock, cheap password hashing or another payment gateway."""
    clock = clock or SystemClock()
    engine = create_engine(settings)
    redis = create_redis(settings)
    soldout = SoldOutMarks(redis, settings.soldout_local_ttl_seconds, engine)
    keys = SigningKeys.from_settings(settings)
    hold_rates = HoldRates()
    deps = Deps(
        settings=settings,
        clock=clock,
        passwords=passwords
        or Passwords(
            concurrency=settings.password_hash_concurrency,
            patience=settings.password_hash_wait_seconds,
        ),
        tokens=Tokens(
            keys,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            clock=clock,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        ),
        payments=payments or HttpPaymentGateway(settings),
        revoked_sessions=revoked_sessions_for(
            redis,
            engine,
            clock,
            timedelta(seconds=settings.access_token_ttl_seconds),
            settings.revocation_resync_seconds,
        ),
        catalog=CatalogSnapshots(engine, settings.catalog_snapshot_ttl_seconds),
        soldout=soldout,
        holds=HoldBatcher(
            engine,
            clock,
            soldout,
            window_seconds=settings.hold_batch_window_ms / 1000,
            max_batch=settings.hold_batch_max,
            key_ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
            rates=hold_rates,
        ),
        views=CatalogViews(
            engine,
            _cache(settings),
            clock,
            detail_ttl=settings.catalog_cache_ttl_seconds,
            availability_ttl=settings.availability_cache_ttl_seconds,
        ),
        rooms=WaitingRooms(
            RedisRoomStates(redis) if redis is not None else LocalRoomStates(),
            engine,
            AdmissionTokens(
                keys, clock, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            ),
            clock,
            hold_rates,
            settings,
        ),
        redis=redis,
    )
    handlers = HANDLERS
    if settings.booking_engine == "baseline-lock":  # the benchmark's comparison, never production
        from ticketflow.bench_only import baseline_lock  # imported only when chosen

        handlers = {**HANDLERS, cmd.HoldTickets: baseline_lock.hold_tickets_with_lock}
    return MessageBus(engine, deps, handlers)


def _cache(settings: Settings) -> Cache:
    """Shared through Redis when configured (so an invalidation reaches every instance), else
    in this process."""
    cache = Cache()
    if settings.redis_url:
        cache.setup(
            settings.redis_url,
            # Pickled values are signed (HMAC) before trusted, with the active token key.
            secret=SigningKeys.from_settings(settings).active_secret,
            digestmod="sha256",
            suppress=True,  # Redis down: a miss, answered from the database
            max_connections=settings.redis_max_connections,
        )
    else:
        cache.setup("mem://?size=10000")
    return cache
