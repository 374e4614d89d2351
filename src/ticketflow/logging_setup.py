"""Logging, configured once per process: one line per record, JSON by default (what a log
pipeline reads) or readable console lines for development. Our own lines go through structlog;
the standard library's (background jobs, libraries, granian) are rendered the same way."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Literal, Protocol, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from ticketflow.request_context import current_caller, current_request_id

LogFormat = Literal["json", "console"]
# Servers that install handlers of their own: their lines go through ours instead.
SERVER_LOGGERS = ("_granian", "granian", "granian.access", "uvicorn", "uvicorn.error")
# Built once: json.dumps(..., default=...) would build an encoder for every line.
_ENCODER = json.JSONEncoder(default=str)
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_ACCESS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE


def _to_json(event_dict: EventDict, **_: object) -> str:
    """orjson: every request writes a line, rendered in half the standard library's time
    (bench/README.md); what orjson refuses (an integer past 64 bits) goes the slow way."""
    try:
        return orjson.dumps(event_dict, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _ENCODER.encode(event_dict)


def _request_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The request a line was written for, if any: its id and authenticated caller."""
    request_id = current_request_id.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
        caller = current_caller.get()
        if caller is not None:
            user_id = caller.user_id
            event_dict.setdefault("user_id", None if user_id is None else str(user_id))
    return event_dict


def _json_message_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A standard-library line whose message is already a JSON object (security events) keeps
    its fields as fields, instead of arriving as one escaped string."""
    message = event_dict.get("event")
    if isinstance(message, str) and message.startswith("{"):
        try:
            fields = json.loads(message)
        except ValueError:
            return event_dict
        if isinstance(fields, dict):
            event_dict.update(fields)
    return event_dict


class AccessLine(Protocol):
    def __call__(
        self, method: str, route: str, path: str, status: int, duration_ms: float
    ) -> None: ...


def _no_line(method: str, route: str, path: str, status: int, duration_ms: float) -> None:
    """Access lines are below the configured level."""


def _json_access_line(stream: TextIO) -> AccessLine:
    """The per-request line rendered in one step: the same fields as structlog's chain writes
    (the request's context, level, ISO timestamp in UTC), at under a third of its instructions. The
    line is a sixth of a cached read's work through the chain (bench/README.md)."""
    lock = threading.Lock()  # one line at a time, as structlog's WriteLogger writes them

    def write(method: str, route: str, path: str, status: int, duration_ms: float) -> None:
        caller = current_caller.get()
        user_id = None if caller is None or caller.user_id is None else str(caller.user_id)
        line = orjson.dumps(
            {
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "event": "request",
                "request_id": current_request_id.get(),
                "user_id": user_id,
                "level": "info",
                "timestamp": datetime.now(UTC),
            },
            option=_ACCESS_OPTIONS,
        )
        with lock:
            stream.write(line.decode())
            stream.flush()

    return write


def _structlog_access_line(
    method: str, route: str, path: str, status: int, duration_ms: float
) -> None:
    """Console lines (development) go through structlog's chain, as readable as every other."""
    structlog.get_logger().info(
        "request", method=method, route=route, path=path, status=status, duration_ms=duration_ms
    )


class _Access:
    """The writer of the per-request line, chosen by every configure_logging()."""

    line: AccessLine = _structlog_access_line


def access_line() -> AccessLine:
    return _Access.line


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler we installed, so configuring again replaces only it."""


def configure_logging(
    log_format: LogFormat = "json", level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's root logger; safe to call again (each
    app does), and test harnesses' own handlers are left in place."""
    stream = stream or sys.stdout
    level_number = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        _request_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(_to_json)]
        if log_format == "json"
        else [structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,  # so a later configure_logging() reaches every logger
    )
    if level_number > logging.INFO:
        _Access.line = _no_line
    elif log_format == "json":
        _Access.line = _json_access_line(stream)
    else:
        _Access.line = _structlog_access_line

    handler = _OurHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, _json_message_fields, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level_number)
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
