"""One router per domain noun, all under /api/v1."""
