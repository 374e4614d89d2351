"""The provider's refusals, each with its HTTP status, answered as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProviderError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class IdempotencyKeyMissing(ProviderError):
    code, title = "idempotency-key-missing", "Idempotency-Key header required"


class NotFound(ProviderError):
    status, code, title = 404, "not-found", "Not found"


class RefundRefused(ProviderError):
    status, code, title = 409, "refund-refused", "The charge cannot be refunded that much"


class IdempotencyKeyReused(ProviderError):
    status, code, title = 422, "idempotency-key-reused", "Idempotency key reused"


class ResponseLost(ProviderError):
    """Injected fault: the work was recorded but the caller never learns how it went."""

    status, code, title = 500, "internal-error", "Internal server error"


class Unavailable(ProviderError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem(
    request: Request, status: int, code: str, title: str, detail: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"urn:sandbox-provider:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


async def _provider_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProviderError)
    return problem(request, error.status, error.code, error.title, error.detail)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in issue["loc"]), "message": issue["msg"]}
        for issue in error.errors()
    ]
    detail = "; ".join(f"{issue['field']}: {issue['message']}" for issue in errors)
    return problem(request, 422, "invalid-input", "Invalid input", detail, errors=errors)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else phrase
    code = phrase.lower().replace(" ", "-")
    return problem(request, error.status_code, code, phrase, detail)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(request, 500, "internal-error", "Internal server error", "A bug; logged.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProviderError, _provider_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
