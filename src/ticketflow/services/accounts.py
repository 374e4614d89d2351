"""Accounts: registration, roles and disabling, and login sessions with rotating refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from ticketflow.adapters.ids import new_id
from ticketflow.adapters.security import RefreshClaims
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import (
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
)
from ticketflow.domain.model import Actor, Role, User
from ticketflow.domain.passwords import check_new_password
from ticketflow.services.messagebus import Deps
from ticketflow.services.security_events import security_event
from ticketflow.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


async def register_user(command: cmd.RegisterUser, uow: UnitOfWork, deps: Deps) -> User:
    email = command.email.strip().lower()
    check_new_password(command.password, field="password")
    password_hash = await deps.passwords.hash(command.password)  # slow: outside the transaction
    user = User(id=new_id(), email=email, role=command.role)
    async with uow:
        if await uow.users.email_taken(email):
            raise AlreadyExists("An account with this e-mail already exists.", field="email")
        await uow.users.add(user, password_hash, uow.clock.now())
        uow.record(
            ev.UserRegistered(stream_id=user.id, version=1, email=email, role=user.role.value)
        )
        try:
            await uow.commit()
        except IntegrityError as error:  # the same e-mail registered concurrently
            raise AlreadyExists(
                "An account with this e-mail already exists.", field="email"
            ) from error
    return user


async def update_user(command: cmd.UpdateUser, uow: UnitOfWork, deps: Deps) -> User:
    """A new role or disabling takes effect on the user's next request (on every instance that
    shares Redis): their sessions end, so tokens minted with the old role stop working."""
    if command.actor.role is not Role.ADMIN:
        raise PermissionDenied("Only an admin can change accounts.")
    if command.disabled and command.user_id == command.actor.user_id:
        # Nobody would be left to enable them again, were they the only admin.
        raise Conflict("An admin can't disable their own account.", field="disabled")
    async with uow:
        user = await uow.users.get(command.user_id)
        if user is None:
            raise NotFound("No such user.")
        read_version, ending = user.version, None
        if command.role is not None and user.role is not command.role:
            uow.record(user.change_role(command.role))
            ending = "role_changed"
        if command.disabled is True and not user.disabled:
            uow.record(user.disable(uow.clock.now()))
            ending = "account_disabled"
        elif command.disabled is False and user.disabled:
            uow.record(user.enable())
        if user.version != read_version:
            await uow.users.save(user, read_version)
        if ending is not None:
            await end_sessions_of(uow, deps, user.id, ending)
        await uow.commit()
    return user


async def end_sessions_of(
    uow: UnitOfWork, deps: Deps, user_id: UUID, reason: str, keep: UUID | None = None
) -> None:
    """End the user's live sessions (all but `keep`) in this unit of work. Once it commits, the
    revocation cache is told, so their access tokens are refused on the next request anywhere."""
    now = uow.clock.now()
    ended = await uow.sessions.end_all_of(user_id, reason, now, except_session=keep)
    uow.record(*(ev.SessionEnded(stream_id=sid, version=v, reason=reason) for sid, v in ended))

    async def publish() -> None:
        for session_id, _ in ended:
            await deps.revoked_sessions.revoke(session_id, now)

    uow.after_commit(publish)


async def _issue(deps: Deps, user: User, claims: RefreshClaims) -> TokenPair:
    now = deps.clock.now()
    return TokenPair(
        access_token=deps.tokens.access_token(user.id, user.role, claims.session_id, now),
        refresh_token=deps.tokens.refresh_token(claims, now),
        expires_in=int(deps.tokens.access_ttl.total_seconds()),
    )


async def log_in(command: cmd.LogIn, uow: UnitOfWork, deps: Deps) -> TokenPair:
    async with uow:
        found = await uow.users.credentials(command.email.strip().lower())
    user, password_hash = found if found else (None, None)
    # Same answer and same work for an unknown e-mail and a wrong password; and no pooled
    # connection held while the hash is checked (~100 ms: a rush would drain the pool).
    if not await deps.passwords.verify(password_hash, command.password) or user is None:
        raise AuthenticationFailed("Wrong e-mail or password.")
    if user.disabled:  # said only to whoever knows the password
        raise AuthenticationFailed("This account is disabled.")
    async with uow:
        # Held until the session is in: a change that ends every session (a new password, a
        # role, disabling) either comes first and is seen here, or waits and ends this one too.
        held = await uow.users.get(user.id, hold=True)
        if held is None or held.version != user.version:
            raise Conflict("The account changed while signing in; sign in again.")
        claims = RefreshClaims(user.id, new_id(), new_id())
        now = uow.clock.now()
        await uow.sessions.start(
            claims.session_id, user.id, claims.token_id, now + deps.tokens.refresh_ttl, now
        )
        uow.record(ev.SessionStarted(stream_id=claims.session_id, version=1, user_id=user.id))
        await uow.commit()
    return await _issue(deps, user, claims)


async def refresh_session(command: cmd.RefreshSession, uow: UnitOfWork, deps: Deps) -> TokenPair:
    presented = deps.tokens.refresh_claims(command.refresh_token)
    fresh = RefreshClaims(presented.user_id, presented.session_id, new_id())
    async with uow:
        now = uow.clock.now()
        rotated = await uow.sessions.rotate(
            presented.session_id,
            presented.token_id,
            fresh.token_id,
            now + deps.tokens.refresh_ttl,
            now,
        )
        if rotated is None:
            # A spent token came back: whoever holds the family may be a thief. End it all.
            version = await uow.sessions.end(presented.session_id, "refresh_token_reuse", now)
            if version is not None:
                uow.record(
                    ev.SessionEnded(
                        stream_id=presented.session_id,
                        version=version,
                        reason="refresh_token_reuse",
                    )
                )
                await uow.commit()
                security_event(
                    "refresh_token_reuse",
                    user_id=presented.user_id,
                    session_id=presented.session_id,
                    token_id=presented.token_id,
                )
            # Also when it had ended already: a retry re-publishes a cache write that was lost.
            await deps.revoked_sessions.revoke(presented.session_id, now)
            raise AuthenticationFailed("The refresh token was already used or revoked.")
        user_id, generation = rotated
        user = await uow.users.get(user_id)
        if user is None:
            raise AuthenticationFailed("The account no longer exists.")
        if user.disabled:  # its sessions ended with it: only a refresh racing that gets here
            raise AuthenticationFailed("This account is disabled.")
        uow.record(ev.SessionRefreshed(stream_id=presented.session_id, version=generation))
        await uow.commit()
    return await _issue(deps, user, fresh)


async def log_out(command: cmd.LogOut, uow: UnitOfWork, deps: Deps) -> None:
    presented = deps.tokens.refresh_claims(command.refresh_token)
    async with uow:
        now = uow.clock.now()
        version = await uow.sessions.end(presented.session_id, "logout", now)
        if version is not None:
            uow.record(
                ev.SessionEnded(stream_id=presented.session_id, version=version, reason="logout")
            )
        await uow.commit()
    # After the commit (the database is the record); a repeated logout re-publishes it.
    await deps.revoked_sessions.revoke(presented.session_id, now)


async def log_out_everywhere(command: cmd.LogOutEverywhere, uow: UnitOfWork, deps: Deps) -> None:
    async with uow:
        await end_sessions_of(uow, deps, command.actor.user_id, "logout_all")
        await uow.commit()


async def authenticate(deps: Deps, access_token: str) -> Actor:
    """The caller an access token speaks for, unless its session has ended since it was minted."""
    claims = deps.tokens.access_claims(access_token)
    if await deps.revoked_sessions.is_revoked(claims.session_id):
        raise AuthenticationFailed("The session of this access token has ended; log in again.")
    return claims.actor
