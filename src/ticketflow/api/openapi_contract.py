"""The OpenAPI document tells the whole truth: every API operation declares its problem+json
answers (not only the 2xx), and operations that serve anonymous callers say so. Clients generated
from it, and schemathesis, rely on that."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from ticketflow.api.deps import accepts_anonymous
from ticketflow.api.errors import PROBLEM_JSON
from ticketflow.api.schemas import Problem

API = "/api/v1/"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, an invalid Idempotency-Key",
    401: "No valid access token",
    403: "The caller's role may not do this",
    404: "No such resource, or not one the caller may see",
    409: "Conflicts with the current state, or the same Idempotency-Key is still in flight",
    413: "Request body too large",
    422: "Invalid input; `errors` names the fields",
    429: "Rate limit used up; retry after Retry-After",
    503: "Too busy right now (load shedding, a busy database, password checks taking turns); "
    "nothing was done: retry after Retry-After",
}


def _statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The problems an operation can answer with, from what it takes and who may call it."""
    # Every request counts against some rate limit, and any can be shed under overload.
    statuses = {429, 503}
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation or method == "post":
        statuses |= {400, 413}
    if method in ("post", "patch"):
        statuses.add(409)
    if operation.get("security"):
        statuses |= {401, 403, 404}
    if "{" in path:
        statuses.add(404)
    return statuses


def _document(method: str, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    for status in sorted(declared | _statuses(method, path, operation)):
        described = responses.get(str(status), {}).get("description")
        if status == 422 or not described:  # FastAPI's 422 describes the body ours replaces
            described = DESCRIPTIONS.get(status, "Error")
        response: dict[str, Any] = {
            "description": described,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
        }
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        responses[str(status)] = response


def _anonymous_operations(app: FastAPI) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and accepts_anonymous(route):
            found |= {(method.lower(), context.path or "") for method in context.methods or ()}
    return found


def _rewrite(app: FastAPI, schema: dict[str, Any]) -> None:
    anonymous = _anonymous_operations(app)
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API):
            continue
        for method, operation in operations.items():
            if (method, path) in anonymous:
                operation["security"] = [{}, *operation.get("security", [])]  # {}: no token
            _document(method, path, operation)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, now replaced
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
            components.pop(unused, None)


def document_api_contract(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _rewrite(app, build())  # build() caches its answer in app.openapi_schema
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
