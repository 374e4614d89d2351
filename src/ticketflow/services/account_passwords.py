"""Passwords: changing one's own, and resetting a forgotten one with an e-mailed token.

Either way the new password meets the policy (domain/passwords.py), is hashed outside any
transaction (argon2 takes ~100 ms: no pooled connection waits on it), and sessions end: the
user's other ones on a change, every one on a reset. Open reset tokens are spent too.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from ticketflow.adapters.ids import new_id
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import AuthenticationFailed, InvalidInput, InvalidResetToken
from ticketflow.domain.passwords import check_new_password
from ticketflow.services.accounts import end_sessions_of
from ticketflow.services.messagebus import Deps
from ticketflow.services.unit_of_work import UnitOfWork

RESET_VALID_FOR = timedelta(minutes=30)
UNUSABLE_RESET = "This password reset link is invalid, used or expired: ask for a new one."


async def change_password(command: cmd.ChangePassword, uow: UnitOfWork, deps: Deps) -> None:
    check_new_password(command.new_password, field="new_password")
    async with uow:
        found = await uow.users.credentials_of(command.actor.user_id)
    if found is None:
        raise AuthenticationFailed("The account no longer exists.")
    user, current_hash = found
    # A 422, not a 401: the caller's token is fine, and clients log out on a 401.
    if not await deps.passwords.verify(current_hash, command.current_password):
        raise InvalidInput("The current password is wrong.", field="current_password")
    new_hash = await deps.passwords.hash(command.new_password)
    async with uow:
        read_version = user.version
        uow.record(user.change_password("changed"))
        await uow.users.save(user, read_version, new_hash)  # unless it changed meanwhile
        await _spend_open_resets(uow, user.id)
        await end_sessions_of(uow, deps, user.id, "password_changed", keep=command.session_id)
        await uow.commit()


async def request_password_reset(
    command: cmd.RequestPasswordReset, uow: UnitOfWork, deps: Deps
) -> None:
    """Record a reset for the account, if there is one that may sign in; the e-mail consumer
    mails its token (services/ticket_emails.py). The caller learns nothing either way."""
    async with uow:
        user = await uow.users.by_email(command.email.strip().lower())
        if user is None or user.disabled:
            return
        now = uow.clock.now()
        reset_id, expires_at = new_id(), now + RESET_VALID_FOR
        await uow.users.add_password_reset(reset_id, user.id, expires_at, now)
        uow.record(
            ev.PasswordResetRequested(
                stream_id=reset_id, version=1, user_id=user.id, expires_at=expires_at
            )
        )
        await uow.commit()


async def reset_password(command: cmd.ResetPassword, uow: UnitOfWork, deps: Deps) -> None:
    reset_id = deps.tokens.password_reset_id(command.token)
    if reset_id is None:
        raise InvalidResetToken(UNUSABLE_RESET, field="token")
    check_new_password(command.new_password, field="new_password")
    async with uow:  # a look first: no hashing for a token that can't work
        user_id = await uow.users.open_password_reset(reset_id, uow.clock.now())
        user = await uow.users.get(user_id) if user_id is not None else None
    if user is None or user.disabled:
        raise InvalidResetToken(UNUSABLE_RESET, field="token")
    new_hash = await deps.passwords.hash(command.new_password)
    async with uow:
        # The claim: of two confirmations with one token, one gets here; and none after expiry.
        if await uow.users.spend_password_reset(reset_id, uow.clock.now()) is None:
            raise InvalidResetToken(UNUSABLE_RESET, field="token")
        uow.record(ev.PasswordResetSpent(stream_id=reset_id, version=2, reason="used"))
        read_version = user.version
        uow.record(user.change_password("reset"))
        await uow.users.save(user, read_version, new_hash)  # disabled meanwhile: a 409, unspent
        await _spend_open_resets(uow, user.id)
        await end_sessions_of(uow, deps, user.id, "password_reset")
        await uow.commit()


async def _spend_open_resets(uow: UnitOfWork, user_id: UUID) -> None:
    """Links mailed before the password changed no longer work."""
    for reset_id in await uow.users.spend_password_resets_of(user_id, uow.clock.now()):
        uow.record(ev.PasswordResetSpent(stream_id=reset_id, version=2, reason="password_changed"))
