"""Registration, login, token refresh, logout and the caller's own account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ticketflow.api.deps import Bus, CurrentActor, ReadConnection
from ticketflow.api.rate_limit_guards import REGISTRATION_LIMIT, ClientIp, RateLimitsDep
from ticketflow.api.schemas import Credentials, RefreshTokenIn, Registration, TokenPairOut, UserOut
from ticketflow.domain import commands as cmd
from ticketflow.services import queries
from ticketflow.services.accounts import TokenPair

router = APIRouter(tags=["auth"])

Responses = dict[int | str, dict[str, Any]]
WRONG_CREDENTIALS: Responses = {401: {"description": "Wrong e-mail or password"}}
BAD_REFRESH_TOKEN: Responses = {
    401: {"description": "Invalid, expired, spent or revoked refresh token"}
}


def _pair(pair: TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/auth/register",
    status_code=201,
    summary="Create a buyer account",
    dependencies=[REGISTRATION_LIMIT],
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


@router.get("/me", summary="The caller's account")
async def me(actor: CurrentActor, db: ReadConnection) -> UserOut:
    return UserOut.model_validate(await queries.user(db, actor.user_id))
