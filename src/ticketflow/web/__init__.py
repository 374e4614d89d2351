"""The web pages: server-rendered HTML on the same bus and queries as the API (see pages.py)."""

from __future__ import annotations

import inspect
from http import HTTPStatus

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ticketflow.adapters.security import SigningKeys
from ticketflow.api.hardening import is_page
from ticketflow.web import (
    accounts,
    admin,
    check_in,
    checkout,
    my_tickets,
    organizer,
    organizer_rooms,
    queue_pages,
    shop,
    static_files,
    ticket_types,
    webhooks,
    widget,
)
from ticketflow.web.cookies import QueuedCookies
from ticketflow.web.pages import error_page
from ticketflow.web.rendered_pages import RenderedPages
from ticketflow.web.session_renewals import SessionRenewals


def install_web(app: FastAPI) -> None:
    """The pages at /, beside the API under /api/v1; left out of the OpenAPI schema."""
    app.state.page_keys = SigningKeys.from_settings(app.state.settings)  # CSRF tokens' key
    app.state.session_renewals = SessionRenewals()
    app.state.rendered_pages = RenderedPages()
    for router in (
        static_files.router,
        accounts.router,
        shop.router,
        queue_pages.router,
        checkout.router,
        my_tickets.router,
    ):
        app.include_router(router)
    for module in (organizer, organizer_rooms, ticket_types, check_in, webhooks, admin, widget):
        app.include_router(module.router)
    app.add_middleware(QueuedCookies)
    answer_problem = app.exception_handlers[HTTPException]

    async def page_or_problem(request: Request, error: Exception) -> Response:
        """A page's 404 (or 405) is a page; the API's stays problem+json."""
        assert isinstance(error, HTTPException)
        if not is_page(request.url.path):
            answer = answer_problem(request, error)
            return await answer if inspect.isawaitable(answer) else answer
        title = HTTPStatus(error.status_code).phrase
        detail = "There is no such page." if error.status_code == 404 else str(error.detail)
        return await error_page(request, error.status_code, title, detail)

    app.add_exception_handler(HTTPException, page_or_problem)
