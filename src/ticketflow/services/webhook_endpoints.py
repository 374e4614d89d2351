"""Organizers' webhook endpoints: registering and deleting them (the reads: webhook_queries.py).

An endpoint's stream has two facts at most, registered (version 1) and deleted (version 2): a
deleted endpoint is disabled for good, not removed, so its delivery log stays.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from ticketflow.adapters.ids import new_id
from ticketflow.adapters.outbound_targets import Resolver, TargetRefused, checked, resolve
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import InvalidInput, LimitReached, NotFound
from ticketflow.domain.model import Role
from ticketflow.services.catalog import require_organizer
from ticketflow.services.messagebus import Deps
from ticketflow.services.unit_of_work import UnitOfWork

Row = dict[str, Any]
REGISTERED, DELETED = 1, 2  # the versions of an endpoint's two facts


async def register_webhook(
    command: cmd.RegisterWebhook, uow: UnitOfWork, deps: Deps, resolver: Resolver = resolve
) -> Row:
    """A new endpoint of the actor's, with its signing secret (shown to the caller this once).
    Its URL must lead outside our network (adapters/outbound_targets.py), over https in
    production; an organizer has at most `webhook_max_endpoints_per_owner` live ones."""
    actor = command.actor
    require_organizer(actor, "have webhooks")
    # The host is looked up before the transaction opens: a slow DNS server holds no lock.
    await _refuse_undeliverable(command.url, deps.settings, resolver)
    endpoint: Row = {
        "id": new_id(),
        "owner_id": actor.user_id,
        "url": command.url,
        "secret": f"whsec_{secrets.token_urlsafe(32)}",
        "event_types": sorted(set(command.event_types)),
        "created_at": uow.clock.now(),
        "disabled_at": None,
    }
    most = deps.settings.webhook_max_endpoints_per_owner
    async with uow:
        if await uow.webhooks.live_count_of(actor.user_id) >= most:
            raise LimitReached(f"You have {most} webhook endpoints; delete one to add another.")
        await uow.webhooks.add(endpoint)
        uow.record(
            ev.WebhookRegistered(
                stream_id=endpoint["id"],
                version=REGISTERED,
                owner_id=actor.user_id,
                origin=_origin(command.url),
                event_types=endpoint["event_types"],
            )
        )
        await uow.commit()
    return endpoint


async def delete_webhook(command: cmd.DeleteWebhook, uow: UnitOfWork, deps: Deps) -> None:
    """A manager deletes their own endpoints (another's do not exist for them), an admin any."""
    actor = command.actor
    require_organizer(actor, "have webhooks")
    owner = None if actor.role is Role.ADMIN else actor.user_id
    async with uow:
        if not await uow.webhooks.disable(command.webhook_id, owner, uow.clock.now()):
            raise NotFound("No such webhook.")
        uow.record(ev.WebhookDeleted(stream_id=command.webhook_id, version=DELETED))
        await uow.commit()


async def _refuse_undeliverable(url: str, settings: Settings, resolver: Resolver) -> None:
    try:
        await checked(
            url,
            allow_private=settings.webhook_allow_private_networks,
            resolver=resolver,
            https_only=settings.environment == "production",
        )
    except TargetRefused as refused:
        raise InvalidInput(f"The URL can't receive webhooks: {refused}.", field="url") from None


def _origin(url: str) -> str:
    """`scheme://host[:port]` of the URL: what the audit trail may show of it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
