"""Paying for a booking, refunding it, and settling whatever a crash or a callback left open.

A payment moves money outside our database, so it can't be one transaction. It is three steps,
each safe to repeat: (1) record a pending payment whose id is the provider's idempotency key,
(2) charge, (3) settle in one transaction with the booking's confirmation and its tickets. A crash
between (2) and (3) leaves a pending payment that the reconciler settles by asking the provider.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from uuid import UUID

from ticketflow import metrics
from ticketflow.adapters.catalog_repository import sum_quantities
from ticketflow.adapters.ids import new_id
from ticketflow.adapters.payment_gateway import (
    Charge,
    GatewayUnavailable,
    ProviderRefused,
    charge_from,
)
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import (
    InvalidTransition,
    NotFound,
    PaymentDeclined,
    PermissionDenied,
    ReplayedCallback,
    ServiceUnavailable,
)
from ticketflow.domain.model import Booking, BookingStatus, Role
from ticketflow.domain.payment import Payment, PaymentStatus
from ticketflow.services.messagebus import Deps
from ticketflow.services.unit_of_work import UnitOfWork

NOT_CHARGED = "not_charged"
AMOUNT_MISMATCH = "amount_mismatch"

log = logging.getLogger(__name__)


def refund_key(payment_id: UUID) -> str:
    """The provider's idempotency key of a payment's refund: one refund per payment, ever."""
    return f"refund-{payment_id}"


async def _booking_for(
    uow: UnitOfWork, command: cmd.PayForBooking | cmd.RefundBooking, buyer_only: bool
) -> tuple[Booking, Payment | None]:
    """The booking if the command's actor may act on it, with its live payment, if any."""
    found = await uow.payments.booking_with_live_payment(command.booking_id)
    actor = command.actor
    if found is None:
        raise NotFound("No such booking.")
    booking = found[0]
    if actor.user_id != booking.user_id:  # the buyer needs no look at the event's organizer
        event = await uow.catalog.get_event(booking.event_id)
        if event is None or not actor.may_see_booking(booking.user_id, event.organizer_id):
            raise NotFound("No such booking.")
    if buyer_only and actor.user_id != booking.user_id and actor.role is not Role.ADMIN:
        raise PermissionDenied("Only the buyer pays for a booking.")
    return found


async def pay_for_booking(command: cmd.PayForBooking, uow: UnitOfWork, deps: Deps) -> Payment:
    async with uow:
        booking, payment = await _booking_for(uow, command, buyer_only=True)
        if payment is not None and payment.status is not PaymentStatus.PENDING:
            raise InvalidTransition(f"The booking is already paid (payment {payment.status}).")
        if payment is None:  # a pending one is resumed: same id, so the provider charges once
            if booking.status is not BookingStatus.PENDING:
                raise InvalidTransition(f"The booking is {booking.status}; nothing to pay.")
            if booking.hold_expires_at <= uow.clock.now():
                raise InvalidTransition("The hold has expired; book again.")
            payment = Payment(
                id=new_id(),
                booking_id=booking.id,
                amount_minor=booking.total_minor,
                currency=booking.currency,
                payment_method=command.payment_method,
            )
            await uow.payments.add(payment, uow.clock.now())
            uow.record(payment.started())
            await uow.commit()
    try:
        charge = await deps.payments.charge(
            str(payment.id),
            payment.amount_minor,
            payment.currency,
            payment.payment_method,
            reference=str(booking.id),
        )
    except GatewayUnavailable as error:
        metrics.PAYMENTS.labels("unavailable").inc()
        raise ServiceUnavailable(
            f"{error} The booking stays held; retry with the same Idempotency-Key.",
            retry_after=error.retry_after,
        ) from error
    async with uow:
        payment = await settle_charge(uow, deps, payment.id, charge)
        await uow.commit()
    if payment.status is PaymentStatus.FAILED:
        raise PaymentDeclined(
            f"The card was declined ({payment.failure_reason}); the booking "
            "stays held until its hold expires."
        )
    if payment.refund_requested_at is not None:
        await complete_refund(uow, deps, payment.id)
        raise InvalidTransition("The hold expired before the payment landed; it was refunded.")
    return payment


async def settle_charge(
    uow: UnitOfWork, deps: Deps, payment_id: UUID, charge: Charge | None
) -> Payment:
    """Apply the provider's answer for a payment, inside an open unit of work. Idempotent.

    The pay request and the provider's webhook carry the same answer, often at the same moment:
    the row lock makes the later one wait and find the payment settled, instead of both reading
    one version and the loser answering a buyer who paid with 409."""
    payment = await uow.payments.get(payment_id, locked=True)
    if payment is None:
        raise NotFound("No such payment.")
    late = payment.status is PaymentStatus.FAILED and payment.failure_reason == NOT_CHARGED
    if not (payment.status is PaymentStatus.PENDING or (late and charge and charge.succeeded)):
        return payment  # already settled: a repeat of the same answer changes nothing
    now, version = uow.clock.now(), payment.version
    if late:
        payment.status = PaymentStatus.PENDING  # the charge we gave up on did land after all
    if charge is not None and charge.succeeded and not _charges_exactly(payment, charge):
        # A provider's answer for another sum is no payment of this booking: recorded as a
        # failure for a person to look at, never tickets for a price nobody agreed to.
        log.error(
            "payment %s: the provider charged %s %s for %s %s (charge %s); not settled as paid",
            payment.id,
            charge.amount_minor,
            charge.currency,
            payment.amount_minor,
            payment.currency,
            charge.id,
        )
        uow.record(payment.fail(AMOUNT_MISMATCH))
        metrics.PAYMENTS.labels(AMOUNT_MISMATCH).inc()
        await uow.payments.save(payment, version, now)
        return payment
    if charge is None or not charge.succeeded:
        reason = (charge.decline_reason or "declined") if charge else NOT_CHARGED
        uow.record(payment.fail(reason))
        metrics.PAYMENTS.labels("declined" if charge else NOT_CHARGED).inc()
        await uow.payments.save(payment, version, now)
        return payment
    uow.record(payment.succeed(charge.id))
    metrics.PAYMENTS.labels("succeeded").inc()
    booking = await uow.bookings.get(payment.booking_id)
    assert booking is not None
    if booking.status is BookingStatus.PENDING:
        ticket_ids = [new_id() for line in booking.lines for _ in range(line.quantity)]
        uow.record(booking.confirm(payment.id, ticket_ids))
        uow.after_commit(partial(spend_admission, deps, booking))
        await uow.bookings.save_status(booking, now)
        await uow.payments.issue_tickets(booking, ticket_ids, now)
    else:
        # Never paid without tickets: the hold ended first, so the money goes back.
        uow.record(payment.request_refund(now, reason=f"booking_{booking.status}"))
    await uow.payments.save(payment, version, now)
    return payment


async def refund_booking(command: cmd.RefundBooking, uow: UnitOfWork, deps: Deps) -> Booking:
    """Refund a confirmed booking through the provider; its tickets return to sale. Once.

    The buyer may only while the event's refund policy allows (no ticket admitted, before the
    deadline and the start); its organizer and admins may at any time, and the event records
    who decided. The tickets are void from the request on: of a scan at the door and a refund
    at once, exactly one wins (the door locks the ticket; the refund voids it, which waits for
    that lock, then looks for a check-in in a statement of its own, which sees the door's)."""
    async with uow:
        booking, payment = await _booking_for(uow, command, buyer_only=False)
        if booking.status is not BookingStatus.CONFIRMED:
            raise InvalidTransition(
                f"Only a confirmed booking can be refunded; it is {booking.status}."
            )
        assert payment is not None and payment.status is PaymentStatus.SUCCEEDED
        if payment.refund_requested_at is None:
            now, version = uow.clock.now(), payment.version
            event = await uow.catalog.get_event(booking.event_id)
            assert event is not None
            await uow.payments.void_tickets(booking.id, now)
            if command.actor.may_manage(event.organizer_id):
                reason = f"decided_by_{command.actor.role}"
            else:
                event.check_buyer_may_refund(now, await uow.check_ins.any_of_booking(booking.id))
                reason = "requested"
            uow.record(payment.request_refund(now, reason=reason))
            await uow.payments.save(payment, version, now)
            await uow.commit()
    await complete_refund(uow, deps, payment.id)
    async with uow:
        refunded = await uow.bookings.get(booking.id)
    assert refunded is not None
    return refunded


async def complete_refund(uow: UnitOfWork, deps: Deps, payment_id: UUID) -> None:
    """Refund a payment whose refund was requested (provider-side idempotent), then record it:
    the payment refunded, and a still-confirmed booking refunded with its tickets back on sale.
    """
    async with uow:
        payment = await uow.payments.get(payment_id)
    if payment is None or payment.status is not PaymentStatus.SUCCEEDED:
        return
    assert payment.provider_ref is not None and payment.refund_requested_at is not None
    try:
        refund = await deps.payments.refund(
            refund_key(payment.id), payment.provider_ref, payment.amount_minor
        )
    except GatewayUnavailable as error:
        raise ServiceUnavailable(
            f"{error} The refund is recorded and will complete automatically.",
            retry_after=error.retry_after,
        ) from error
    async with uow:
        payment = await uow.payments.get(payment_id, locked=True)
        assert payment is not None
        if payment.status is not PaymentStatus.SUCCEEDED:
            return  # someone else completed it meanwhile
        now, version = uow.clock.now(), payment.version
        uow.record(payment.refunded(refund.id))
        metrics.PAYMENTS.labels("refunded").inc()
        await uow.payments.save(payment, version, now)
        booking = await uow.bookings.get(payment.booking_id)
        if booking is not None and booking.status is BookingStatus.CONFIRMED:
            uow.record(booking.refund())
            await uow.bookings.save_status(booking, now)
            await uow.payments.void_tickets(booking.id, now)
            await uow.return_tickets(
                sum_quantities((line.ticket_type_id, line.quantity) for line in booking.lines)
            )
        await uow.commit()


async def reconcile_payments(command: cmd.ReconcilePayments, uow: UnitOfWork, deps: Deps) -> int:
    """Settle payments a crash left halfway by asking the provider; the number settled."""
    cutoff = deps.clock.now() - timedelta(seconds=deps.settings.reconcile_after_seconds)
    async with uow:
        unsettled = await uow.payments.unsettled(cutoff, command.batch_size)
    settled = 0
    for payment in unsettled:
        try:
            if payment.status is PaymentStatus.PENDING:
                charge = await deps.payments.find_charge(str(payment.id))
                async with uow:
                    payment = await settle_charge(uow, deps, payment.id, charge)
                    await uow.commit()
            if payment.status is PaymentStatus.SUCCEEDED and payment.refund_requested_at:
                await complete_refund(uow, deps, payment.id)
            settled += 1
        except (ServiceUnavailable, GatewayUnavailable, ProviderRefused):
            break  # the provider is struggling: try the rest next round
    return settled


async def apply_provider_event(
    command: cmd.ApplyProviderEvent, uow: UnitOfWork, deps: Deps
) -> None:
    """A verified callback from the provider; a replayed event id changes nothing.

    Nearly every `charge.succeeded` only repeats what the pay request settled moments before: that
    is answered from two reads, with no write and no commit to wait for."""
    charge, payment_id = _charge_of(command)
    async with uow:
        if await uow.payments.receipt_seen(command.event_id):
            raise ReplayedCallback(f"Event {command.event_id} was already received.")
        payment = await uow.payments.get(payment_id) if payment_id else None
        if payment is not None and charge is not None and _settled_by(payment, charge):
            return
        if not await uow.payments.first_receipt(command.event_id, command.type, uow.clock.now()):
            raise ReplayedCallback(f"Event {command.event_id} was already received.")
        if payment is not None and charge is not None:
            await settle_charge(uow, deps, payment.id, charge)
        await uow.commit()


def _charge_of(command: cmd.ApplyProviderEvent) -> tuple[Charge | None, UUID | None]:
    """The charge a callback reports and our payment it belongs to (the key we sent), if any."""
    if not command.type.startswith("charge."):
        return None, None
    try:
        payment_id = UUID(str(command.data.get("idempotency_key")))
    except ValueError:
        return None, None
    return charge_from(command.data), payment_id


def _charges_exactly(payment: Payment, charge: Charge) -> bool:
    return (charge.amount_minor, charge.currency.upper()) == (
        payment.amount_minor,
        payment.currency.upper(),
    )


def _settled_by(payment: Payment, charge: Charge) -> bool:
    return (
        charge.succeeded
        and payment.status is PaymentStatus.SUCCEEDED
        and payment.provider_ref == charge.id
    )


async def spend_admission(deps: Deps, booking: Booking) -> None:
    """Paid: the buyer's admission from the event's waiting room (if it has one on) is spent.
    Lost if the room's state can't be reached now: the admission then lasts until its session
    ends, and the buyer caps still bound what it can hold."""
    snapshot = await deps.catalog.get(booking.event_id)
    try:
        await deps.rooms.spend(snapshot[0] if snapshot else None, booking.user_id)
    except ServiceUnavailable:
        log.warning("waiting room: booking %s paid, its admission not marked spent", booking.id)
