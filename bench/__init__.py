"""The TicketFlow flash-sale benchmark: `make bench`, or `uv run python -m bench --help`."""
