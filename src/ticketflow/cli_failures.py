"""Failures of a `ticketflow` command that are the operator's to fix (database down, bad URL, bad
setting, refused command): one clear line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from ticketflow.domain.errors import DomainError

errors = Console(stderr=True)


def fail(message: str, status: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(status)


def _database() -> str:
    """The configured database, password hidden (read raw: the settings may be what failed)."""
    url = os.environ.get("TICKETFLOW_DATABASE_URL", "the default SQLite file")
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def explain(error: Exception) -> str:
    """One line on what failed, for an operator."""
    if isinstance(error, ValidationError):
        problem = error.errors()[0]
        name = "_".join(str(part) for part in problem["loc"]).upper()
        where = f"TICKETFLOW_{name}: " if name else ""
        return f"invalid setting {where}{problem['msg']}"
    if isinstance(error, ArgumentError):
        return f"bad TICKETFLOW_DATABASE_URL ({_database()}): {_first_line(error)}"
    if isinstance(error, DBAPIError):
        return f"database {_database()}: {_first_line(error.orig or error)}"
    if isinstance(error, OSError | SQLAlchemyError):
        return f"cannot reach the database {_database()}: {_first_line(error)}"
    if isinstance(error, RedisError):
        return f"Redis ({os.environ.get('TICKETFLOW_REDIS_URL')}): {_first_line(error)}"
    if isinstance(error, CommandError):
        return f"migration failed: {_first_line(error)}"
    return _first_line(error)


OPERATOR_FAILURES = (ValidationError, SQLAlchemyError, OSError, RedisError, CommandError)


@contextmanager
def failures_explained() -> Iterator[None]:
    """Turn the operator's failures raised inside into `fail(...)`; bugs still show a traceback."""
    try:
        yield
    except DomainError as error:
        fail(error.detail)
    except OPERATOR_FAILURES as error:
        fail(explain(error))
