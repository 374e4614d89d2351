"""Rendering pages: the Jinja2 templates, a page for one browser (private) or for everyone
(public, cached like the API's public reads), and `PageRoute`, which every page route uses:
it refuses a change without a valid CSRF token and turns refusals into pages, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Hashable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ticketflow.api.http_caching import PRIVATE, PUBLIC, etag_matches
from ticketflow.domain.errors import DomainError
from ticketflow.services.messagebus import MessageBus
from ticketflow.web import csrf, formatting
from ticketflow.web.rendered_pages import RenderedPages, strong_etag
from ticketflow.web.session import SignInRequired, current_session
from ticketflow.web.static_files import static_url

TEMPLATES_DIR = Path(__file__).with_name("templates")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Short notices a redirect asks the next page to show (`?notice=`): fixed texts, so a link
# can't put words of its own on our pages.
NOTICES = {
    "signed-in": "Welcome back: you are signed in.",
    "signed-up": "Your account is ready: you are signed in.",
    "signed-out": "You are signed out.",
    "reset-sent": "If an account uses that address, a reset link is on its way to it.",
    "password-reset": "Your password is changed: sign in with the new one.",
    "paid": "Payment received: your tickets are below.",
    "cancelled": "The booking is cancelled and its tickets went back on sale.",
    "refunded": "The booking is refunded.",
}


@cache  # built on first use, once per process
def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.filters.update(formatting.FILTERS)
    return env


def _html(template: str, context: dict[str, Any]) -> bytes:
    return templates().get_template(template).render(context).encode()


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


async def private_page(
    request: Request, template: str, status: int = 200, *, forms: bool = True, **context: Any
) -> HTMLResponse:
    """A page (or htmx fragment) for this browser only: its session, its CSRF token (unless
    it has no `forms`); kept by no cache."""
    session = await current_session(request)
    token = csrf.token_for(request, session.session_id if session else None) if forms else ""
    body = _html(
        template,
        {
            **context,
            "request": request,
            "session": session,
            "personal": True,
            "csrf_token": token,
            "notice": _notice(request),
        },
    )
    return HTMLResponse(body, status, headers={"Cache-Control": PRIVATE})


def public_page(
    request: Request,
    template: str,
    *,
    kept_as: tuple[Hashable, tuple[object, ...]] | None = None,
    hit: bool | None = None,
    **context: Any,
) -> Response:
    """A page that is the same bytes for everyone (the signed-in bits come in a fragment of
    their own): a strong ETag, 304 for a client that has it, cached as the API's public reads.
    `kept_as` (key, the objects it is rendered from): kept rendered until one of them is
    another object (web/rendered_pages.py). `hit`: whether the process's copies answered the
    reads it shows, said in `X-Cache` as the API's reads say it."""
    notice = _notice(request)

    def render() -> bytes:
        return _html(template, {**context, "request": request, "personal": False, "notice": notice})

    if kept_as is not None and notice is None:  # a notice is the link's own words: not kept
        rendered: RenderedPages = request.app.state.rendered_pages
        body, etag = rendered.page(*kept_as, render)
    else:
        body = render()
        etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": PUBLIC}
    if hit is not None:
        headers["X-Cache"] = "hit" if hit else "miss"
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)


def bus_of(request: Request) -> MessageBus:
    """The app's message bus, which every page's use case goes through."""
    bus: MessageBus = request.app.state.bus
    return bus


def see_other(url: str) -> RedirectResponse:
    """Where a form's browser goes next (303: the next request is a GET)."""
    return RedirectResponse(url, status_code=303)


async def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return await private_page(request, "error.html", status, title=title, detail=detail)


class CsrfRefused(DomainError):
    status, code, title = 403, "csrf-refused", "This form has expired"


async def _check_csrf(request: Request) -> None:
    session = await current_session(request)
    presented = request.headers.get(csrf.HEADER, "")
    if not presented and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(csrf.FIELD)  # kept: the route reads it again
        presented = value if isinstance(value, str) else ""
    if not csrf.token_is_valid(request, session.session_id if session else None, presented):
        raise CsrfRefused(
            "The form was sent without its security token, or from a page opened before you "
            "signed in or out. Go back, reload the page and try again."
        )


class PageRoute(APIRoute):
    """The route class of every page: CSRF checked before any change, refusals rendered."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_page(request: Request) -> Response:
            try:
                if request.method not in SAFE_METHODS:
                    await _check_csrf(request)
                return await handle(request)
            except SignInRequired:
                # Back to the page after signing in; a form sent with a lapsed session starts over.
                back = request.url.path if request.method == "GET" else "/"
                return see_other(f"/sign-in?next={quote(back)}")
            except DomainError as refusal:
                return await error_page(request, refusal.status, refusal.title, refusal.detail)
            except RequestValidationError as invalid:
                if any(issue["loc"][0] == "path" for issue in invalid.errors()):
                    return await error_page(request, 404, "Not found", "There is no such page.")
                return await error_page(
                    request, 422, "Invalid input", "The form was not filled in as expected."
                )

        return handle_page
