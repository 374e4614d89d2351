"""Code the product never runs: the designs the benchmark measures ours against, selected only by
benchmark settings (TICKETFLOW_BOOKING_ENGINE=baseline-lock). Nothing outside this package and
the wiring in bootstrap.py imports it."""
