"""Registration, login, token refresh, logout, passwords and the caller's own account."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from ticketflow.api.caller import bearer_token
from ticketflow.api.deps import Bus, CurrentActor, ReadConnection
from ticketflow.api.rate_limit_guards import PASSWORD_HASHING_LIMIT, ClientIp, RateLimitsDep
from ticketflow.api.schemas import (
    Credentials,
    PasswordChange,
    PasswordResetAccepted,
    PasswordResetConfirmation,
    PasswordResetRequest,
    RefreshTokenIn,
    Registration,
    TokenPairOut,
    UserOut,
)
from ticketflow.domain import commands as cmd
from ticketflow.services import queries
from ticketflow.services.accounts import TokenPair

router = APIRouter(tags=["auth"])

Responses = dict[int | str, dict[str, Any]]
WRONG_CREDENTIALS: Responses = {401: {"description": "Wrong e-mail or password"}}
BAD_REFRESH_TOKEN: Responses = {
    401: {"description": "Invalid, expired, spent or revoked refresh token"}
}
HASHING_BUSY: Responses = {
    503: {"description": "Password checks taking turns, or brute-force protection unavailable"}
}
RESET_ACCEPTED = PasswordResetAccepted(
    detail="If an account may sign in with this address, a reset link valid for 30 minutes is "
    "on its way to it."
)


async def _session_id(request: Request, bus: Bus, _: CurrentActor) -> UUID:
    """The login session of the caller's access token (checked already: a cache hit now)."""
    token = bearer_token(request.scope)
    assert token is not None  # CurrentActor found one
    return bus.deps.tokens.access_claims(token).session_id


CallerSession = Annotated[UUID, Depends(_session_id)]


def _pair(pair: TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/auth/register",
    status_code=201,
    summary="Create a buyer account",
    dependencies=[PASSWORD_HASHING_LIMIT],
)
async def register(body: Registration, bus: Bus, db: ReadConnection) -> UserOut:
    user = await bus.handle(cmd.RegisterUser(email=body.email, password=body.password))
    return UserOut.model_validate(await queries.user(db, user.id))


@router.post(
    "/auth/login",
    summary="Exchange e-mail and password for a token pair",
    responses={
        **WRONG_CREDENTIALS,
        503: {"description": "Brute-force protection unavailable; retry after Retry-After"},
    },
)
async def login(body: Credentials, bus: Bus, limits: RateLimitsDep, ip: ClientIp) -> TokenPairOut:
    async with limits.login_attempt(ip, body.email):
        return _pair(await bus.handle(cmd.LogIn(email=body.email, password=body.password)))


@router.post(
    "/auth/refresh",
    summary="Trade a refresh token for a new pair (it is then spent)",
    responses=BAD_REFRESH_TOKEN,
)
async def refresh(body: RefreshTokenIn, bus: Bus) -> TokenPairOut:
    return _pair(await bus.handle(cmd.RefreshSession(refresh_token=body.refresh_token)))


@router.post(
    "/auth/logout",
    status_code=204,
    summary="Revoke a refresh token and its family",
    responses=BAD_REFRESH_TOKEN,
)
async def logout(body: RefreshTokenIn, bus: Bus) -> Response:
    await bus.handle(cmd.LogOut(refresh_token=body.refresh_token))
    return Response(status_code=204)


@router.post(
    "/auth/logout-all",
    status_code=204,
    summary="End every session of the caller's, this one included",
)
async def logout_all(actor: CurrentActor, bus: Bus) -> Response:
    await bus.handle(cmd.LogOutEverywhere(actor))
    return Response(status_code=204)


@router.post(
    "/auth/password",
    status_code=204,
    summary="Change the caller's password; their other sessions end, this one stays",
    responses={
        422: {"description": "`current_password` is wrong, or `new_password` breaks the policy"},
        **HASHING_BUSY,
    },
)
async def change_password(
    body: PasswordChange,
    actor: CurrentActor,
    session_id: CallerSession,
    bus: Bus,
    limits: RateLimitsDep,
    ip: ClientIp,
) -> Response:
    # Guessing the current password here is guessing a login: the same limits, per account.
    async with limits.login_attempt(ip, str(actor.user_id)):
        await bus.handle(
            cmd.ChangePassword(actor, session_id, body.current_password, body.new_password)
        )
    return Response(status_code=204)


@router.post(
    "/auth/password-reset",
    status_code=202,
    summary="Mail a password reset link; the same answer whether or not the account exists",
)
async def request_password_reset(
    body: PasswordResetRequest, bus: Bus, limits: RateLimitsDep, ip: ClientIp
) -> PasswordResetAccepted:
    await limits.check_password_reset(ip, body.email)
    await bus.handle(cmd.RequestPasswordReset(body.email))
    return RESET_ACCEPTED


@router.post(
    "/auth/password-reset/confirm",
    status_code=204,
    summary="Set a new password with the token of a reset e-mail; every session ends",
    dependencies=[PASSWORD_HASHING_LIMIT],
    responses={
        422: {
            "description": "The token is invalid, used or expired (`invalid-reset-token`, one "
            "answer for all), or `new_password` breaks the policy"
        },
        **HASHING_BUSY,
    },
)
async def confirm_password_reset(body: PasswordResetConfirmation, bus: Bus) -> Response:
    await bus.handle(cmd.ResetPassword(body.token, body.new_password))
    return Response(status_code=204)


@router.get("/me", summary="The caller's account")
async def me(actor: CurrentActor, db: ReadConnection) -> UserOut:
    return UserOut.model_validate(await queries.user(db, actor.user_id))
