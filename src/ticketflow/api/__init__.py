"""The HTTP entry point: FastAPI routes that turn requests into commands and queries."""
