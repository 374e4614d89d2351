"""Resource ids: UUID v7, time-ordered for index locality and cursor pagination."""

from __future__ import annotations

from uuid import UUID

import uuid_utils


def new_id() -> UUID:
    return UUID(bytes=uuid_utils.uuid7().bytes)
