"""Alembic migrations of the TicketFlow schema."""
