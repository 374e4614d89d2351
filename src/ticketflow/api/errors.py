"""RFC 9457 problem+json for every error: domain refusals, bad input, unknown routes, bugs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ticketflow.domain.errors import (
    AuthenticationFailed,
    DomainError,
    ServiceUnavailable,
    TooManyRequests,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": f"urn:ticketflow:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.scope["path"],  # not request.url: building a URL costs more
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    return domain_problem(request, error)


def domain_problem(request: Request, error: DomainError) -> JSONResponse:
    """The answer to a domain refusal, wherever it is caught."""
    errors = [{"field": error.field, "message": error.detail}] if error.field else None
    headers: dict[str, str] | None = None
    if isinstance(error, AuthenticationFailed):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, ServiceUnavailable | TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    return problem(
        request,
        error.status,
        error.code,
        error.title,
        error.detail,
        errors,
        headers,
        error.extensions(),
    )


def _field(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location[1:]] or [str(location[0])]
    return ".".join(parts)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    issues = list(error.errors())
    if any(issue["loc"][0] == "path" for issue in issues):
        # A malformed id can name nothing that exists: same answer as an unknown one.
        return problem(request, 404, "not-found", "Not found", "No such resource.")
    errors = [{"field": _field(tuple(issue["loc"])), "message": issue["msg"]} for issue in issues]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(request, 422, "invalid-input", "Invalid input", detail, errors)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else phrase
    code = phrase.lower().replace(" ", "-")
    return problem(request, error.status_code, code, phrase, detail, headers=error.headers)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(
        request,
        500,
        "internal-error",
        "Internal server error",
        "Something went wrong on our side; it has been logged.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
