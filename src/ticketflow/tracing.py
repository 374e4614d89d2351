"""OpenTelemetry tracing of HTTP requests, database statements, Redis commands and calls to the
payment provider. Off unless the standard OTEL_* variables ask for it (an exporter or an OTLP
endpoint), and never with OTEL_SDK_DISABLED=true; tests pass a TracerProvider of their own.

HTTP spans come from FastAPI's own telemetry (it knows each route's template without searching
the route table); the database, Redis, aiohttp and httpx from their OpenTelemetry
instrumentations, which patch those libraries for the whole process: `instrument()` while the
app runs, `uninstrument()` when it stops.
"""

from __future__ import annotations

import os

from fastapi.telemetry import TelemetryConfig
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

EXPORTERS = ("otlp", "console")


def tracer_provider_from_environment() -> TracerProvider | None:
    """A provider exporting where OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_*ENDPOINT say, or
    None when they ask for nothing. The exporters read their own OTEL_* settings."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [name for name in names if name]
    if not names and (
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        names = ["otlp"]
    exporters = [_exporter(name) for name in names if name != "none"]
    if not exporters:
        return None
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read here; the sampler (OTEL_TRACES_
    # SAMPLER) by the provider itself.
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or "ticketflow"})
    )
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":  # over HTTP (protobuf), the exporter we ship
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported: use one of {EXPORTERS}")


def fastapi_telemetry(provider: TracerProvider | None) -> TelemetryConfig:
    """FastAPI's own telemetry: spans with `provider`, or nothing at all (no per-request cost),
    whatever global providers other code sets. Its metrics and logs stay off: ours are
    Prometheus and structlog."""
    if provider is None:
        return {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
    return {"tracer_provider": provider, "metrics": False, "logs": False, "auto_configure": False}


def instrument(provider: TracerProvider, engine: AsyncEngine) -> None:
    """Trace the engine's statements, every Redis command and every outgoing HTTP request
    (aiohttp: the payment provider; httpx: organizers' webhooks)."""
    # Its declared range stops below SQLAlchemy 2.1, which it traces all the same: the engine
    # events it listens to are unchanged (the tracing test checks the spans).
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    RedisInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    for instrumentor in (
        SQLAlchemyInstrumentor(),
        RedisInstrumentor(),
        HTTPXClientInstrumentor(),
        AioHttpClientInstrumentor(),
    ):
        instrumentor.uninstrument()
