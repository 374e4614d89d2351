"""Registration, login, token refresh, logout and the caller's own account."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ticketflow.api.deps import Bus, CurrentActor, ReadConnection
from ticketflow.api.schemas import Credentials, RefreshTokenIn, Registration, TokenPairOut, UserOut
from ticketflow.domain import commands as cmd
from ticketflow.services import queries
from ticketflow.services.accounts import TokenPair

router = APIRouter(tags=["auth"])


def _pair(pair: TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/auth/register", status_code=201, summary="Create a buyer account")
async def register(body: Registration, bus: Bus, db: ReadConnection) -> UserOut:
    user = await bus.handle(cmd.RegisterUser(email=body.email, password=body.password))
    return UserOut.model_validate(await queries.user(db, user.id))


@router.post("/auth/login", summary="Exchange e-mail and password for a token pair")
async def login(body: Credentials, bus: Bus) -> TokenPairOut:
    return _pair(await bus.handle(cmd.LogIn(email=body.email, password=body.password)))


@router.post("/auth/refresh", summary="Trade a refresh token for a new pair (it is then spent)")
async def refresh(body: RefreshTokenIn, bus: Bus) -> TokenPairOut:
    return _pair(await bus.handle(cmd.RefreshSession(refresh_token=body.refresh_token)))


@router.post("/auth/logout", status_code=204, summary="Revoke a refresh token and its family")
async def logout(body: RefreshTokenIn, bus: Bus) -> Response:
    await bus.handle(cmd.LogOut(refresh_token=body.refresh_token))
    return Response(status_code=204)


@router.get("/me", summary="The caller's account")
async def me(actor: CurrentActor, db: ReadConnection) -> UserOut:
    return UserOut.model_validate(await queries.user(db, actor.user_id))
