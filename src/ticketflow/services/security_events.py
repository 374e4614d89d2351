"""Security events: one structured (JSON) line each on the `ticketflow.security` logger, so a
log pipeline can alert on them without parsing prose."""

from __future__ import annotations

import json
import logging

from ticketflow.services.messagebus import current_request_id

log = logging.getLogger("ticketflow.security")


def security_event(event: str, **fields: object) -> None:
    """Log `event` with its fields (stringified) and the id of the request that caused it."""
    record = {"event": event, **{name: str(value) for name, value in fields.items()}}
    record["request_id"] = str(current_request_id.get())
    log.warning(json.dumps(record, sort_keys=True))
