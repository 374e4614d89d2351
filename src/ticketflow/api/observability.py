"""Every request, observed once: its id (`X-Request-ID`, taken from the caller or made), one
access log line, and its latency in the request histogram (plus booking outcomes).

A plain ASGI middleware wrapped around the whole stack, error handling included, so a 500 still
carries its id and the line logging the error names the request. It runs on every request of a
flash sale: no header dicts, label children and route templates looked up once and kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from time import perf_counter

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow import metrics
from ticketflow.api.hardening import (
    DOCS_PATHS,
    WIDGET_PAGES,
    is_page,
    security_headers,
    with_headers,
)
from ticketflow.logging_setup import access_line
from ticketflow.request_context import Caller, current_caller, current_request_id
from ticketflow.services.requests_in_flight import RequestsInFlight

HEADER = b"x-request-id"
UNMATCHED = "unmatched"  # the route label of paths no route serves (scanners, typos)
BOOKINGS = "/api/v1/bookings"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER = re.compile(r"\{[^}]+\}")
# A parameter's convertor, which the direct routes' paths name (`{booking_id:uuid}`): left out,
# so that a request is counted under one template whichever of its routes served it.
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
_MAX_REMEMBERED_PATHS = 10_000


def _given_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == HEADER:
            value = value[:64]
            return value if value and value.isascii() and value.decode().isprintable() else None
    return None


def _booking_outcome(status: int) -> str | None:
    if status == 201:
        return "held"
    if status == 409:
        return "sold_out"
    return "rejected" if 400 <= status < 500 else None


class RouteTemplates:
    """The path template of the route that served a request (`/api/v1/bookings/{booking_id}`),
    never the raw path, so metric labels stay few."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._by_route: dict[int, str] | None = None
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        self._by_path: dict[str, str] = {}

    def of(self, scope: Scope) -> str:
        if self._by_route is None:
            self._learn_routes()
            assert self._by_route is not None
        route = scope.get("route")  # set by the router when it matched one
        template = self._by_route.get(id(route)) if route is not None else None
        return template or self._by_path.get(scope["path"]) or self._match(scope["path"])

    def _learn_routes(self) -> None:
        by_route: dict[int, str] = {}
        for context in iter_route_contexts(self._app.routes):
            if context.path:
                template = _CONVERTOR.sub(r"{\1}", context.path)
                by_route[id(context.original_route)] = template
                literals = _PARAMETER.split(template)  # the text between {parameters}
                pattern = "[^/]+".join(re.escape(literal) for literal in literals)
                self._patterns.append((re.compile(f"{pattern}$"), template))
        self._by_route = by_route

    def _match(self, path: str) -> str:
        """Requests answered before routing (an idempotent replay, a 429, a preflight)."""
        template = next((t for pattern, t in self._patterns if pattern.match(path)), UNMATCHED)
        if len(self._by_path) < _MAX_REMEMBERED_PATHS:
            self._by_path[path] = template
        return template


class ObservabilityMiddleware:
    """Around everything: the request id, the security headers, the access log line and the
    request metrics, in one layer (each layer costs every request its own send wrapper)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        production = fastapi_app.state.settings.environment == "production"
        self._headers_by_kind = {
            kind: security_headers(path, production)
            for kind, path in (
                ("docs", "/docs"),
                ("auth", "/api/v1/auth/"),
                ("api", "/api/v1/"),
                ("page", "/"),
                ("widget", WIDGET_PAGES),
            )
        }
        # An answer to a signed-in caller is theirs: kept by no cache unless the route says so
        # itself (the public reads do: their bytes are everyone's).
        self._headers_by_kind["signed-in"] = [
            *self._headers_by_kind["api"],
            (b"cache-control", b"no-store"),
        ]
        self._routes = RouteTemplates(fastapi_app)
        self._observe: dict[tuple[str, str, int], Callable[[float], None]] = {}
        outcomes = ("held", "sold_out", "rejected")
        self._bookings = {outcome: metrics.BOOKINGS.labels(outcome) for outcome in outcomes}
        self._in_flight: RequestsInFlight = fastapi_app.state.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _given_id(scope["headers"])
        id_header = given or os.urandom(16).hex().encode()  # as random as uuid4(), 4x cheaper
        status = 500  # unless an answer starts: the app failed before it could say
        added = [*self._security_headers(scope), (HEADER, id_header)]

        # Waiting for its answer until the answer starts (a stream, e.g. live SSE, is not).
        waiting = True

        async def send_with_id(message: Message) -> None:
            nonlocal status, waiting
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = with_headers(list(message.get("headers", ())), added)
                waiting = False
                self._in_flight.finished()
            await send(message)

        started = perf_counter()
        id_token = current_request_id.set(id_header.decode())
        caller_token = current_caller.set(Caller())
        self._in_flight.started()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if waiting:
                self._in_flight.finished()
            self._record(scope, status, perf_counter() - started)
            current_caller.reset(caller_token)
            current_request_id.reset(id_token)

    def _security_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        path: str = scope["path"]
        if path in DOCS_PATHS:
            return self._headers_by_kind["docs"]
        if path.startswith("/api/v1/auth/"):
            return self._headers_by_kind["auth"]
        if path.startswith(WIDGET_PAGES):  # the one page other sites may frame
            return self._headers_by_kind["widget"]
        if is_page(path):  # each page says itself who may cache it (web/pages.py)
            return self._headers_by_kind["page"]
        signed_in = any(name == b"authorization" for name, _ in scope["headers"])
        return self._headers_by_kind["signed-in" if signed_in else "api"]

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        route = self._routes.of(scope)
        observe = self._observe.get((method, route, status))
        if observe is None:
            child = metrics.REQUEST_DURATION.labels(method, route, str(status))
            observe = self._observe[method, route, status] = child.observe
        observe(seconds)
        if route == BOOKINGS and method == "POST" and (outcome := _booking_outcome(status)):
            self._bookings[outcome].inc()
        # The line names the request and its caller, as every line written during it does.
        access_line()(method, route, scope["path"], status, round(seconds * 1000, 2))


def install_observability(app: FastAPI) -> None:
    """Wrap the app's whole middleware stack, outside Starlette's error middleware (which answers
    500s, and whose handler logs the error) so those are observed as well."""
    build = app.build_middleware_stack

    def build_observed() -> ASGIApp:
        return ObservabilityMiddleware(build(), app)

    app.build_middleware_stack = build_observed  # type: ignore[method-assign]
