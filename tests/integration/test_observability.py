"""Observability: each request's JSON log line carries its id and caller, /metrics counts what
happened (bookings by outcome, requests by route template), and one booking is one trace whose
database and Redis calls are children of its HTTP span."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.logging_setup import configure_logging
from ticketflow.services.sweeper import sweep_once

from ..builders import API, account, app_bus, booking_body, event_on_sale
from ..conftest import FAST_PASSWORDS, serving, settings_for
from .conftest import flush

BOOKINGS = f"{API}/bookings"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line written while the test runs (JSON), instead of on stdout."""
    lines = io.StringIO()
    yield lines
    configure_logging()  # back to stdout for the tests after this one


def _logged(lines: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines.getvalue().splitlines()]


async def test_a_requests_json_log_line_carries_its_id_and_caller(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    configure_logging("json", "info", stream=log_lines)
    buyer = await account(app_bus(client))
    request_id = f"test-{uuid.uuid4().hex}"
    unknown = uuid.uuid4()

    answer = await client.get(
        f"{BOOKINGS}/{unknown}", headers={**buyer.headers, "X-Request-ID": request_id}
    )
    anonymous = await client.get("/health")

    assert answer.status_code == 404
    assert answer.headers["X-Request-ID"] == request_id
    made_up = anonymous.headers["X-Request-ID"]  # none was sent: the app made one
    lines = {line.get("request_id"): line for line in _logged(log_lines)}
    assert lines[request_id] == {
        "event": "request",
        "request_id": request_id,
        "user_id": str(buyer.actor.user_id),
        "method": "GET",
        "route": f"{BOOKINGS}/{{booking_id}}",  # the template: raw paths would be unbounded
        "path": f"{BOOKINGS}/{unknown}",
        "status": 404,
        "duration_ms": lines[request_id]["duration_ms"],
        "level": "info",
        "timestamp": lines[request_id]["timestamp"],
    }
    assert lines[request_id]["duration_ms"] >= 0
    assert lines[made_up]["route"] == "/health" and lines[made_up]["user_id"] is None


async def test_a_request_is_logged_under_its_routes_template_whichever_route_served_it(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    """A direct route (api/direct_routes.py) names its parameters' convertors in its path."""
    configure_logging("json", "info", stream=log_lines)
    buyer = await account(app_bus(client))
    tickets = f"{BOOKINGS}/{uuid.uuid4()}/tickets"
    served, handed_on = f"direct-{uuid.uuid4().hex}", f"ordinary-{uuid.uuid4().hex}"

    direct = await client.get(tickets, headers={**buyer.headers, "X-Request-ID": served})
    ordinary = await client.get(tickets, headers={"X-Request-ID": handed_on})  # no token

    assert (direct.status_code, ordinary.status_code) == (404, 401)
    lines = {line.get("request_id"): line for line in _logged(log_lines)}
    template = f"{BOOKINGS}/{{booking_id}}/tickets"
    assert lines[served]["route"] == lines[handed_on]["route"] == template


async def test_a_request_that_fails_answers_500_with_its_id_and_its_error_names_it(
    settings: Settings, clock: ManualClock, log_lines: io.StringIO
) -> None:
    app = create_app(settings, clock, FAST_PASSWORDS)

    @app.get("/api/v1/fails")
    async def fails() -> None:
        raise RuntimeError("a bug")

    configure_logging("json", "info", stream=log_lines)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.get("/api/v1/fails", headers={"X-Request-ID": "fails-1"})

    assert (answer.status_code, answer.headers["X-Request-ID"]) == (500, "fails-1")
    # A bug's answer is hardened like any other.
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    mine = [line for line in _logged(log_lines) if line.get("request_id") == "fails-1"]
    assert [(line["event"], line["level"]) for line in mine] == [
        ("unhandled error on GET /api/v1/fails", "error"),
        ("request", "info"),
    ]
    assert "RuntimeError: a bug" in mine[0]["exception"]
    assert mine[1]["status"] == 500


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _metrics(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[Any]], float]:
    answer = await client.get("/metrics")  # anonymous, like /health
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return _samples(answer.text)


async def test_with_a_scrape_token_metrics_answer_only_whoever_presents_it(
    settings: Settings, clock: ManualClock
) -> None:
    settings = settings.model_copy(update={"metrics_token": "scrape-token-of-our-prometheus"})
    async with serving(create_app(settings, clock, FAST_PASSWORDS)) as client:
        for wrong in ({}, {"Authorization": "Bearer guessed"}):
            refused = await client.get("/metrics", headers=wrong)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "ticketflow_" not in refused.text
        token = {"Authorization": "Bearer scrape-token-of-our-prometheus"}
        scraped = await client.get("/metrics", headers=token)
        assert scraped.status_code == 200 and "ticketflow_" in scraped.text


def _count(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_bookings_by_outcome_and_requests_by_route(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    buyer = await account(bus)
    sale = await event_on_sale(bus, totals=(1,))
    body = booking_body(sale.event.id, (sale.ticket_types[0].id, 1))
    before = await _metrics(client)

    held = await client.post(BOOKINGS, json=body, headers=buyer.headers)
    sold_out = await client.post(BOOKINGS, json=body, headers=buyer.headers)
    after = await _metrics(client)

    assert (held.status_code, sold_out.status_code) == (201, 409)
    for outcome in ("held", "sold_out"):
        moved = _count(after, "ticketflow_bookings_total", outcome=outcome) - _count(
            before, "ticketflow_bookings_total", outcome=outcome
        )
        assert moved == 1, outcome
    requests = "ticketflow_http_request_duration_seconds_count"
    for status in ("201", "409"):
        labels = {"method": "POST", "route": BOOKINGS, "status": status}
        assert _count(after, requests, **labels) - _count(before, requests, **labels) == 1
    assert _count(after, "ticketflow_db_pool_size") > 0
    assert ("ticketflow_payment_breaker_state", frozenset()) in after


async def test_metrics_count_holds_the_sweeper_expired(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(client)
    buyer = await account(bus)
    sale = await event_on_sale(bus)
    body = booking_body(sale.event.id, (sale.ticket_types[0].id, 1))
    for _ in range(2):
        assert (await client.post(BOOKINGS, json=body, headers=buyer.headers)).status_code == 201
    before = await _metrics(client)

    clock.advance(bus.deps.settings.hold_ttl_seconds + 1)
    assert await sweep_once(bus) == 2

    after = await _metrics(client)
    expired = "ticketflow_holds_expired_total"
    assert _count(after, expired) - _count(before, expired) == 2


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_client(
    postgresql_url: str, redis_url: str, clock: ManualClock, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on PostgreSQL and Redis, tracing into `spans`."""
    flush(redis_url)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    settings: Settings = settings_for(postgresql_url, redis_url=redis_url)
    app = create_app(settings, clock, FAST_PASSWORDS, tracer_provider=provider)
    async with serving(app) as client:
        yield client
    provider.shutdown()


def _descends_from(span: ReadableSpan, ancestor: ReadableSpan, by_id: dict[int, Any]) -> bool:
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


async def test_one_bookings_http_database_and_redis_spans_are_one_trace(
    traced_client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    bus = app_bus(traced_client)
    buyer = await account(bus)
    sale = await event_on_sale(bus)
    spans.clear()  # the set-up's own statements are no part of the booking

    answer = await traced_client.post(
        BOOKINGS,
        json=booking_body(sale.event.id, (sale.ticket_types[0].id, 2)),
        headers=buyer.headers,
    )

    assert answer.status_code == 201, answer.text
    finished = spans.get_finished_spans()
    servers = [span for span in finished if span.kind is SpanKind.SERVER]
    assert [span.attributes["http.route"] for span in servers if span.attributes] == [BOOKINGS]
    server = servers[0]
    by_id = {span.context.span_id: span for span in finished}
    by_library = {
        library: [
            span
            for span in finished
            if span.instrumentation_scope and span.instrumentation_scope.name.endswith(library)
        ]
        for library in ("sqlalchemy", "redis")
    }
    for library, found in by_library.items():
        assert found, f"no {library} spans"
        for span in found:
            assert span.context.trace_id == server.context.trace_id, span.name
            assert _descends_from(span, server, by_id), span.name
    statements = " ".join(str((span.attributes or {}).get("db.statement")) for span in finished)
    assert "INSERT INTO bookings" in statements
