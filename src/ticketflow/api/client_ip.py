"""The caller's IP address, for per-IP limits: the peer of the connection, or what a trusted
proxy in front of us says in X-Forwarded-For (anyone else could write any address there); and
likewise the scheme the caller used (X-Forwarded-Proto)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from starlette.types import Scope

Network = IPv4Network | IPv6Network


def parse_networks(listed: str) -> tuple[Network, ...]:
    """`TICKETFLOW_TRUSTED_PROXIES`: comma-separated addresses or CIDR blocks."""
    return tuple(
        ip_network(item.strip(), strict=False) for item in listed.split(",") if item.strip()
    )


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_ip(scope: Scope, proxies: tuple[Network, ...]) -> str:
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = ",".join(
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    )
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    # Each proxy appends the address it saw: walking back from our side, the first address that
    # is not one of our proxies is the client. Further left, the client could have written it.
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: count it against the proxy
    return peer


def client_scheme(scope: Scope, proxies: tuple[Network, ...]) -> str:
    """ "https" or "http": how the caller reached us. Behind a trusted proxy, what it says in
    X-Forwarded-Proto (the last value: the one the proxy next to us set), else our own."""
    own = str(scope.get("scheme", "http"))
    client = scope.get("client")
    if not proxies or not client or not _trusted(str(client[0]), proxies):
        return own
    said = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-proto"
    ]
    hops = [hop.strip().lower() for hop in ",".join(said).split(",") if hop.strip()]
    return hops[-1] if hops and hops[-1] in ("http", "https") else own
