"""Our static files under names carrying a hash of their content, so a browser may keep each
for a year: a changed file is a new name, and pages name the current one (`static_url`)."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import Response

STATIC_DIR = Path(__file__).with_name("static")
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str


def hashed_name(name: str, body: bytes) -> str:
    """`app.css` -> `app.3f2a9c1b0d4e.css`: the hash before the extension keeps the type."""
    stem, dot, suffix = name.partition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}{dot}{suffix}"


@cache  # read once per process, on first use: the files change only with a new release
def _files() -> tuple[dict[str, str], dict[str, StaticFile]]:
    urls: dict[str, str] = {}
    served: dict[str, StaticFile] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if not path.is_file():
            continue
        body = path.read_bytes()
        hashed = hashed_name(path.name, body)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        urls[path.name] = f"/static/{hashed}"
        served[hashed] = StaticFile(body, media_type)
    return urls, served


def static_url(name: str) -> str:
    """The URL of static file `name` (e.g. 'app.css') as pages link it."""
    return _files()[0][name]


@router.get("/static/{hashed}")
async def static_file(hashed: str) -> Response:
    found = _files()[1].get(hashed)
    if found is None:
        raise HTTPException(404)  # a page's 404 (web/__init__.py)
    return Response(found.body, media_type=found.media_type, headers={"Cache-Control": IMMUTABLE})
