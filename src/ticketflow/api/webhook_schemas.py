"""Bodies of the webhook routes: endpoints, the secret shown once, the delivery log."""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from ticketflow.api.schemas import Write
from ticketflow.services.webhook_fanout import webhook_event_types

# What the schema can say of a URL: http(s)://, no blanks or control characters, no "user@".
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f/?#@]+([/?#][^\s\x00-\x1f\x7f]*)?$"


def _endpoint_url(url: str) -> str:
    """What it can't: the host must parse as one (a name, IPv4 or [IPv6]) with a valid port."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port out of range or not a number
    except ValueError as error:
        raise ValueError("must be a valid http:// or https:// URL") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials: verify our signature instead")
    if port == 0:
        raise ValueError("port 0 is not a port to deliver to")
    if _looks_numeric(parts.hostname):
        try:  # all digits and dots: an IPv4 address or nothing (999.999.999.999)
            ip_address(parts.hostname)
        except ValueError as error:
            raise ValueError("the host is not a valid IPv4 address") from error
    return url


def _looks_numeric(host: str) -> bool:
    return all(label.isdigit() for label in host.split(".") if label)


def _event_type(name: str) -> str:
    if name not in webhook_event_types():
        raise ValueError(f"unknown event type; known: {', '.join(webhook_event_types())}")
    return name


EndpointUrl = Annotated[
    str,
    StringConstraints(min_length=10, max_length=2048, pattern=URL_PATTERN),
    AfterValidator(_endpoint_url),
    Field(examples=["https://example.com/ticketflow-hooks"]),
]
EventType = Annotated[
    str,
    AfterValidator(_event_type),
    Field(json_schema_extra={"enum": list(webhook_event_types())}),
]


class WebhookIn(Write):
    url: EndpointUrl
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=50)]


class WebhookOut(BaseModel):
    id: UUID
    owner_id: UUID
    url: str
    event_types: list[str]
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="Signs every delivery (header TicketFlow-Signature). Shown only now: keep it."
    )


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


class WebhookDeliveryOut(BaseModel):
    id: UUID = Field(description="Also the TicketFlow-Event-Id header: the same on every retry")
    endpoint_id: UUID
    event_type: str
    payload: dict[str, Any]
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None
