"""schemathesis against the app's own OpenAPI schema: requests generated for every operation, sent
as an admin, a manager, a buyer or nobody, to the app on a real PostgreSQL database. No answer may
be a 5xx, use an undocumented status, or break the schema documented for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ticketflow.api.app import create_app
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import API, account, event_on_sale
from ..conftest import FAST_PASSWORDS, settings_for, wipe

CALLERS = ("admin", "manager", "user", "anonymous")
# Bounded so the whole run stays well under a minute; raise it locally for a deeper search.
EXAMPLES_PER_OPERATION = 50
CURSOR = "a cursor is opaque: valid only if this API issued it"
SCHEDULE = "an event must end after it starts, sales inside it: rules across fields"
RESERVED_EMAIL = "e-mail domains reserved for special use (RFC 6761, e.g. .test) are refused"
COMMON_PASSWORD = "one of the 10,000 most common passwords is refused: a list, not a schema"
CHECKED_SECRET = "only the holder of a secret (current password, mailed token) is accepted"
KEY_REUSE = "the same Idempotency-Key sent with another request is a 422, by contract"
# The one check narrowed, and only here: "a schema-valid request is accepted". These operations
# refuse some schema-valid requests for reasons no JSON Schema can state. Every other check
# (no 5xx, documented statuses, content types, headers, response schemas) runs everywhere.
REFUSES_SOME_VALID_REQUESTS = {
    ("GET", f"{API}/admin/audit"): CURSOR,
    ("GET", f"{API}/events"): CURSOR,
    ("GET", f"{API}/bookings"): CURSOR,
    ("GET", f"{API}/admin/users"): CURSOR,
    ("POST", f"{API}/events"): SCHEDULE,
    ("PATCH", f"{API}/events/{{event_id}}"): SCHEDULE,
    ("POST", f"{API}/auth/register"): f"{RESERVED_EMAIL}; {COMMON_PASSWORD}",
    ("POST", f"{API}/auth/password"): f"{CHECKED_SECRET}; {COMMON_PASSWORD}",
    ("POST", f"{API}/auth/password-reset"): RESERVED_EMAIL,
    ("POST", f"{API}/auth/password-reset/confirm"): f"{CHECKED_SECRET}; {COMMON_PASSWORD}",
    ("POST", f"{API}/auth/login"): RESERVED_EMAIL,
    ("POST", f"{API}/bookings/{{booking_id}}/payments"): KEY_REUSE,
    ("POST", f"{API}/bookings/{{booking_id}}/refund"): KEY_REUSE,
    ("POST", f"{API}/payments/webhook"): "only the provider can sign a body (HMAC)",
    ("GET", f"{API}/webhooks"): CURSOR,
    ("GET", f"{API}/webhooks/{{webhook_id}}/deliveries"): CURSOR,
    ("POST", f"{API}/webhooks"): "a URL's host and port must parse, which its pattern can't say",
}
# Operations that end the caller's own sessions: sent with tokens of their own, so the callers of
# every other operation keep theirs.
ENDS_THE_CALLERS_SESSIONS = {("POST", f"{API}/auth/logout-all")}
OPERATIONS = sorted(
    (method.upper(), path)
    for path, operations in create_app(Settings()).openapi()["paths"].items()
    for method in operations
)


Headers = dict[str, dict[str, str]]  # per caller


@dataclass(frozen=True)
class FuzzTarget:
    schema: Any
    headers: Headers
    spare_headers: Headers  # other accounts, for ENDS_THE_CALLERS_SESSIONS
    real_ids: dict[str, str]  # path parameter -> the id of something that exists


async def _callers(bus: MessageBus) -> Headers:
    roles = {"admin": Role.ADMIN, "manager": Role.MANAGER, "user": Role.USER}
    headers = {caller: (await account(bus, role)).headers for caller, role in roles.items()}
    return {**headers, "anonymous": {}}


async def _seed(database_url: str) -> tuple[Headers, Headers, dict[str, str]]:
    """Accounts with tokens and an event on sale for the generated requests to act on."""
    # A bus of its own, on purpose: seeded before the app exists, which schemathesis then serves
    # on a loop thread of its own (the app's bus lives on that loop, not this one).
    bus = build_bus(settings_for(database_url), passwords=FAST_PASSWORDS)
    try:
        await wipe(bus.engine)
        headers, spare_headers = await _callers(bus), await _callers(bus)
        manager = await account(bus, Role.MANAGER)
        # The account PATCH /admin/users/{user_id} changes (and may disable): none of the callers.
        bystander = await account(bus, Role.USER)
        sale = await event_on_sale(bus, manager)
        hook = await bus.handle(
            cmd.RegisterWebhook(manager.actor, "https://example.com/hooks", ("booking.held",))
        )
    finally:
        await bus.engine.dispose()
    real_ids = {
        "event_id": str(sale.event.id),
        "ticket_type_id": str(sale.ticket_types[0].id),
        "user_id": str(bystander.actor.user_id),
        "webhook_id": str(hook["id"]),
    }
    return headers, spare_headers, real_ids


def _run_alone(coroutine: Any) -> Any:
    """Run on a loop of our own (the suite's is not running: this test is synchronous)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        for task in asyncio.all_tasks(loop):  # background jobs the seeding bus started
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


@pytest.fixture(scope="module")
def fuzz_target(postgresql_url: str) -> Iterator[FuzzTarget]:
    headers, spare_headers, real_ids = _run_alone(_seed(postgresql_url))
    app = create_app(settings_for(postgresql_url), passwords=FAST_PASSWORDS)
    # schemathesis serves the app in-process, lifespan included, on an event loop thread of its own.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        yield FuzzTarget(schema, headers, spare_headers, real_ids)
    finally:
        asgi.shutdown_lifespans()  # the app's connections close before the database is dropped


def _cases(operation: Any, headers: dict[str, str], real_ids: dict[str, str]) -> Any:
    """Valid and invalid requests; the caller's token is fixed, so no mutation targets it (the
    checks would then expect a refusal the token we send prevents)."""
    fixed = {"headers": headers} if headers else {}
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, **fixed),
        operation.as_strategy(GenerationMode.NEGATIVE, **fixed),
        # Generated ids name nothing (404): these reach the code behind the lookup.
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real_ids, **fixed),
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_generated_requests_get_documented_answers(
    fuzz_target: FuzzTarget, method: str, path: str
) -> None:
    operation = fuzz_target.schema[path][method]
    real = {name: value for name, value in fuzz_target.real_ids.items() if f"{{{name}}}" in path}
    ends_sessions = (method, path) in ENDS_THE_CALLERS_SESSIONS
    headers = fuzz_target.spare_headers if ends_sessions else fuzz_target.headers
    cases = st.sampled_from(CALLERS).flatmap(
        lambda caller: _cases(operation, headers[caller], real)
    )
    narrowed = (method, path) in REFUSES_SOME_VALID_REQUESTS
    excluded = [positive_data_acceptance] if narrowed else []

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_as_documented(case: Case) -> None:
        case.call_and_validate(excluded_checks=excluded)

    answers_as_documented()
