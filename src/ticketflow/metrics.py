"""Prometheus metrics: counters and histograms updated where things happen, gauges set when
`/metrics` is scraped. With several worker processes (`ticketflow serve --workers N`) each writes
its own files under PROMETHEUS_MULTIPROC_DIR, and a scrape of any worker sums them all.

Cache hit rate: rate(ticketflow_cache_hits_total) / (that + rate(ticketflow_cache_misses_total)).
Request count per route and status: ticketflow_http_request_duration_seconds_count.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# A fast API: most answers take a few milliseconds, so the low buckets are fine-grained; and
# between 100 and 250 ms, where latency targets sit (a p99 "under 100 ms" missed by how much).
REQUEST_DURATION = Histogram(
    "ticketflow_http_request_duration_seconds",
    "HTTP requests answered, by method, route template and status, and how long they took",
    ["method", "route", "status"],
    buckets=(
        *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25),
        *(0.5, 1.0, 2.5, 5.0, 10.0),
    ),
)
BOOKINGS = Counter(
    "ticketflow_bookings",
    "Answers to POST /api/v1/bookings: held (201), sold_out (409), rejected (other 4xx)",
    ["outcome"],
)
# Group commit, observable: how many holds share a transaction, and how long one takes. Small
# batches at a steady rate pay each transaction's fixed cost nearly per hold.
HOLD_BATCH_HOLDS = Histogram(
    "ticketflow_hold_batch_holds",
    "Holds committed per hold batch (one transaction each)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
HOLD_BATCH_SECONDS = Histogram(
    "ticketflow_hold_batch_seconds",
    "How long a committed hold batch's transaction took, from its first statement to its commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
HOLDS_EXPIRED = Counter("ticketflow_holds_expired", "Holds released by the sweeper")
PAYMENTS = Counter(
    "ticketflow_payments",
    "Payments settled or refused: succeeded, declined, not_charged (the provider never saw "
    "it), unavailable (the provider could not be reached), refunded",
    ["outcome"],
)
# Waiting rooms, per event: admitted a minute is rate(..._admitted_total[1m]) * 60; the abandon
# rate is abandoned / (abandoned + admitted); p50/p95 wait from the histogram's buckets.
ROOM_WAITING = Gauge(
    "ticketflow_waiting_room_queue_length",
    "Places waiting in an event's waiting room, as last seen by this process",
    ["event"],
    multiprocess_mode="livemax",
)
ROOM_ADMITTED = Counter(
    "ticketflow_waiting_room_admitted", "Places admitted from an event's waiting room", ["event"]
)
ROOM_ABANDONED = Counter(
    "ticketflow_waiting_room_abandoned",
    "Places skipped at their turn: nobody had looked at them for a minute",
    ["event"],
)
ROOM_WAIT = Histogram(
    "ticketflow_waiting_room_wait_seconds",
    "How long admitted places waited, from joining to admission",
    ["event"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
CACHE_HITS = Counter("ticketflow_cache_hits", "Catalog reads answered entirely from the cache")
CACHE_MISSES = Counter("ticketflow_cache_misses", "Catalog reads that went to the database")

# Per-process state, sampled at scrape time (and every few seconds with several processes):
# "live" modes drop a process's value once it has exited.
DB_POOL_CONNECTIONS = Gauge(
    "ticketflow_db_pool_connections",
    "Database connections of the pool: in_use (checked out) and idle, summed over processes",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "ticketflow_db_pool_size",
    "Connections each pool keeps (overflow not counted), summed over processes",
    multiprocess_mode="livesum",
)
PAYMENT_BREAKER_STATE = Gauge(
    "ticketflow_payment_breaker_state",
    "Payment provider circuit breaker: 0 closed, 1 half-open, 2 open (the worst process's)",
    multiprocess_mode="livemax",
)
# One value for the whole system, read from the database by whichever process is scraped.
OUTBOX_RELAY_LAG = Gauge(
    "ticketflow_outbox_relay_lag_events",
    "Committed domain events not yet published by the outbox relay",
    multiprocess_mode="livemostrecent",
)


def shared_between_processes() -> bool:
    """Whether metrics are kept in files shared by several worker processes."""
    return MULTIPROCESS_DIR_VARIABLE in os.environ


def exposition() -> bytes:
    """Every metric in the Prometheus text format, summed over processes if there are several."""
    if not shared_between_processes():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def forget_this_process() -> None:
    """On a worker's way out: its live gauges no longer count."""
    if shared_between_processes():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@contextmanager
def shared_by_workers(workers: int) -> Iterator[None]:
    """Around a server of `workers` processes: with several, and PROMETHEUS_MULTIPROC_DIR unset,
    their metrics go to a fresh directory of ours, removed afterwards."""
    if workers < 2 or shared_between_processes():
        yield
        return
    directory = tempfile.mkdtemp(prefix="ticketflow-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
    # prometheus_client chose single-process mode when this process imported it; forked workers
    # would inherit that choice, spawned ones import it afresh and see the directory.
    multiprocessing.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)
