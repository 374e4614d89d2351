"""Account pages: sign up, sign in, sign out, password reset, and the signed-in nav fragment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from ticketflow.api.client_ip import client_ip
from ticketflow.api.rate_limits import RateLimits
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.session import SignedIn, current_session, end_session, start_session

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=128)]


def _limits(request: Request) -> tuple[RateLimits, str]:
    limits: RateLimits = request.app.state.rate_limits
    return limits, client_ip(request.scope, limits.proxies)


def _next_page(next_url: str) -> str:
    """Only a path of ours: never send the browser to another site after signing in."""
    return next_url if next_url.startswith("/") and not next_url.startswith("//") else "/"


@router.get("/session-nav")
async def session_nav(request: Request) -> Response:
    """The signed-in part of the header, asked for by public pages (which are the same bytes
    for everyone, so they cannot carry it). Signed out it has no form, so no CSRF token: asked
    for alongside a sign-in page, it must not race it to set a different CSRF cookie."""
    signed_in = await current_session(request) is not None
    return await private_page(request, "_session_nav.html", forms=signed_in)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = "/") -> Response:
    return await private_page(request, "sign_in.html", next=_next_page(next))


@router.post("/sign-in")
async def sign_in(
    request: Request, email: Text, password: Password, next: Annotated[str, Form()] = "/"
) -> Response:
    limits, ip = _limits(request)
    try:
        async with limits.login_attempt(ip, email):
            pair = await bus_of(request).handle(cmd.LogIn(email=email, password=password))
    except DomainError as refusal:
        return await private_page(
            request, "sign_in.html", refusal.status, error=refusal, email=email, next=next
        )
    start_session(request, pair)
    destination = _next_page(next)
    return see_other(destination if destination != "/" else "/?notice=signed-in")


@router.get("/sign-up")
async def sign_up_form(request: Request) -> Response:
    return await private_page(request, "sign_up.html")


@router.post("/sign-up")
async def sign_up(request: Request, email: Text, password: Password) -> Response:
    limits, ip = _limits(request)
    bus = bus_of(request)
    try:
        await limits.check_password_hashing(ip)
        await bus.handle(cmd.RegisterUser(email=email, password=password))
        pair = await bus.handle(cmd.LogIn(email=email, password=password))
    except DomainError as refusal:
        return await private_page(
            request, "sign_up.html", refusal.status, error=refusal, email=email
        )
    start_session(request, pair)
    return see_other("/?notice=signed-up")


@router.post("/sign-out")
async def sign_out(request: Request, session: SignedIn) -> Response:
    await bus_of(request).handle(cmd.LogOut(refresh_token=session.refresh_token))
    end_session(request)
    return see_other("/?notice=signed-out")


@router.get("/password-reset")
async def password_reset_form(request: Request) -> Response:
    return await private_page(request, "password_reset.html")


@router.post("/password-reset")
async def request_password_reset(request: Request, email: Text) -> Response:
    limits, ip = _limits(request)
    try:
        await limits.check_password_reset(ip, email)
        await bus_of(request).handle(cmd.RequestPasswordReset(email))
    except DomainError as refusal:
        return await private_page(
            request, "password_reset.html", refusal.status, error=refusal, email=email
        )
    return see_other("/sign-in?notice=reset-sent")


@router.get("/password-reset/confirm")
async def new_password_form(request: Request, token: str = "") -> Response:
    return await private_page(request, "new_password.html", token=token)


@router.post("/password-reset/confirm")
async def set_new_password(
    request: Request, token: Annotated[str, Form(max_length=2048)], new_password: Password
) -> Response:
    try:
        await bus_of(request).handle(cmd.ResetPassword(token, new_password))
    except DomainError as refusal:
        return await private_page(
            request, "new_password.html", refusal.status, error=refusal, token=token
        )
    return see_other("/sign-in?notice=password-reset")
