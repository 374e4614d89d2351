"""`/metrics` for Prometheus, and the gauges read when it is scraped: the database pool, the
payment circuit breaker, the outbox relay's lag."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request, Response
from sqlalchemy.pool import QueuePool

from ticketflow import metrics
from ticketflow.adapters import outbox
from ticketflow.adapters.payment_gateway import HttpPaymentGateway
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.outbox_relay import redis_relay

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
# circuitbreaker's state names, as a number a graph and an alert can compare.
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


# Not in the OpenAPI document: text for Prometheus, not part of the JSON API.
@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    """Anonymous unless TICKETFLOW_METRICS_TOKEN is set: then only `Authorization: Bearer <it>`
    (what is counted tells a stranger how busy, and how loaded, the service is)."""
    bus: MessageBus = request.app.state.bus
    wanted = bus.deps.settings.metrics_token
    if wanted is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {wanted}".encode()):
            return Response(
                "metrics need the scrape token\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    sample_process_gauges(bus)
    await sample_relay_lag(bus)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


def sample_process_gauges(bus: MessageBus) -> None:
    """This process's pool and breaker, now."""
    pool = bus.engine.pool
    if isinstance(pool, QueuePool):  # a pool that counts its connections (NullPool does not)
        metrics.DB_POOL_CONNECTIONS.labels("in_use").set(pool.checkedout())
        metrics.DB_POOL_CONNECTIONS.labels("idle").set(pool.checkedin())
        metrics.DB_POOL_SIZE.set(pool.size())
    gateway = bus.deps.payments
    if isinstance(gateway, HttpPaymentGateway):
        metrics.PAYMENT_BREAKER_STATE.set(BREAKER_STATES.get(gateway.breaker.state, 2))


async def sample_relay_lag(bus: MessageBus) -> None:
    """Events committed but not yet relayed to the Redis Stream (only relayed with Redis)."""
    if bus.deps.redis is None:
        return
    try:
        async with bus.engine.connect() as connection:
            lag = await outbox.events_after_position(connection, redis_relay(bus).position)
    except Exception:  # the database is down: the scrape still answers, without this gauge
        log.warning("relay lag not measured: database unreachable", exc_info=True)
        return
    metrics.OUTBOX_RELAY_LAG.set(lag)


async def keep_process_gauges_fresh(bus: MessageBus) -> int:
    """With several workers a scrape reaches one of them: the others refresh their own."""
    sample_process_gauges(bus)
    return 0
