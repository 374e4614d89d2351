"""A random secret generated once and kept in a file: the development JWT secret, so that
`make run` needs no setup and yet nobody can mint tokens with a secret printed in our README."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def kept_secret(path: Path) -> str:
    """The secret in `path`, generated there first if the file does not exist.

    Safe when several processes start at once (`serve --workers N`, a CLI command beside the
    server): each writes its candidate to a file of its own, then links it to `path`, which only
    succeeds where `path` does not exist yet; whoever loses reads the winner's."""
    if not path.exists():
        candidate = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: theirs
                os.link(candidate, path)
        finally:
            candidate.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty: delete it to have a new secret generated")
    return secret
