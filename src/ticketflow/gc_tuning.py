"""The garbage collector of a serving process, tuned for thousands of requests in flight.

In a flash sale a worker holds thousands of requests at once, and their objects outlive many
young collections: with CPython's default thresholds (700, 10, 10) each collection moves them on
and the older generations, walked ever more often, hold all of them plus the ~180k objects
imported at start-up. Measured in process on the benchmark's burst in miniature (`python -m
bench.profile_app --path burst --requests 5000`, time in the collector taken from
`gc.callbacks`): per request, 504 us in the collector with the defaults, 107 us with young
threshold 20,000, 58 us with 50,000 (chosen while busy), 35 us with 100,000.

Collecting that seldom makes each collection longer, though, and a request that lands on one
waits for it. At a steady 125 and 250 bookings/s (the benchmark's sustained phase, one run
each) p99 was 75 and 150 ms with the busy thresholds, 48 and 118 ms with the defaults; runs on
this VM vary about as much, so that is a hint, not a proof. Until it is measured better, the
busy thresholds hold only while the process is busy (services/requests_in_flight.py says when),
where the gain is large and certain.
"""

from __future__ import annotations

import gc

# Young objects allocated (net) before a young collection; then how many young collections
# before a middle one, and middle ones before a full one (which walks the whole heap).
CALM = (700, 10, 10)  # CPython's defaults
BUSY = (50_000, 50, 100)


def settle_for_serving() -> None:
    """Call once the app has started: what exists now lives as long as the process, so it is
    collected once and then frozen out of every later collection."""
    gc.collect()
    gc.freeze()


def collect_for(busy: bool) -> None:
    """Garbage looked for less often while the process is busy answering a burst."""
    gc.set_threshold(*(BUSY if busy else CALM))
