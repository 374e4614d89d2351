"""The sandbox payment provider: a fake card processor served over real HTTP with its own ledger.

It stands in for a system we don't own, so it imports nothing from the rest of TicketFlow; our
app talks to it only over HTTP and imports nothing from it (its webhooks are checked with our
own copy of the scheme, adapters/webhook_signing.py).
"""
