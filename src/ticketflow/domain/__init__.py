"""The booking domain in plain Python: no I/O, no framework, no SQL."""
