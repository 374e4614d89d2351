"""The garbage collector of a serving process, tuned for thousands of requests in flight.

In a flash sale a worker holds thousands of requests at once, and their objects outlive many
young collections: with CPython's default thresholds (700, 10, 10) each collection moves them on
and the older generations, walked ever more often, hold all of them plus the ~180k objects
imported at start-up. Measured in process on the benchmark's burst in miniature (`python -m
bench.profile_app --path burst --requests 5000`, time in the collector taken from
`gc.callbacks`): per request, 504 us in the collector with the defaults, 107 us with young
threshold 20,000, 58 us with 50,000 (chosen), 35 us with 100,000. A young generation of 50,000
objects is a few megabytes.
"""

from __future__ import annotations

import gc

# Young objects allocated (net) before a young collection; then how many young collections
# before a middle one, and middle ones before a full one (which walks the whole heap).
THRESHOLDS = (50_000, 50, 100)


def settle_for_serving() -> None:
    """Call once the app has started: what exists now lives as long as the process, so it is
    collected once and then frozen out of every later collection; garbage is looked for less
    often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
