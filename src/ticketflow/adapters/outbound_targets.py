"""Where our servers may send an organizer's webhooks: to public addresses only (SSRF guard).

A webhook URL names a host, and the host names addresses. One inside our own network (loopback,
the private ranges, link-local with the cloud metadata service, carrier-grade NAT, multicast,
unspecified or reserved space, or such an address mapped into IPv6) would let an organizer aim
the delivery worker at Redis, PostgreSQL, the metadata service or the payment provider, and read
the status codes back like a port scanner. So a URL is checked when it is registered and again
before every delivery, and that delivery's connection goes to the address just checked: a name
that resolved to a public address when it was registered may resolve to 127.0.0.1 later (DNS
rebinding), and resolving it once more while connecting would let it.

`allow_private` (TICKETFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS) lifts the address rule, for a
deployment whose receivers live on its own network, and for the tests' local receivers; a name
that does not resolve is then let through as it is (there is no rule to check it against).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from urllib.parse import urlsplit, urlunsplit

Address = IPv4Address | IPv6Address
# host, port -> the addresses the host stands for (tests stand in for DNS with their own)
Resolver = Callable[[str, int], Awaitable[list[str]]]

SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


class TargetRefused(Exception):
    """The URL can't be delivered to; the message says why, in a few words."""


def refusal(address: Address) -> str | None:
    """Why `address` is no place to send a webhook to; None for a public unicast address."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            return refusal(embedded)
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata)"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (isinstance(address, IPv4Address) and address in SHARED_ADDRESS_SPACE, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-public"),
    )
    return next((reason for refused, reason in checks if refused), None)


async def resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for `host` (TCP)."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


@dataclass(frozen=True)
class Target:
    """A URL checked to be deliverable: where to connect, and what to tell the server."""

    url: str  # with the host replaced by the checked address
    host_header: str  # the URL's own host[:port]
    tls_name: str | None  # the name to verify the certificate for (https)


async def checked(
    url: str, *, allow_private: bool, resolver: Resolver = resolve, https_only: bool = False
) -> Target:
    """The target to connect to for `url`; raises TargetRefused if it may not be delivered to."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    if parts.scheme not in ("http", "https") or not host:
        raise TargetRefused("must be an http:// or https:// URL with a host")
    if https_only and parts.scheme != "https":
        raise TargetRefused("must be an https:// URL")
    port = port or (443 if parts.scheme == "https" else 80)
    host_header = parts.netloc.rpartition("@")[2]
    tls_name = host if parts.scheme == "https" else None
    address = await _address_of(host, port, allow_private, resolver)
    if address is None:
        return Target(url, host_header, tls_name)
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return Target(urlunsplit(parts._replace(netloc=netloc)), host_header, tls_name)


async def _address_of(
    host: str, port: int, allow_private: bool, resolver: Resolver
) -> Address | None:
    """The first of the host's addresses, once every one of them passed the rule: a name that
    also resolves to an inside address could be made to connect there on another try. None:
    the name does not resolve, and private networks are allowed."""
    says = "is"
    try:
        addresses = [ip_address(host)]
    except ValueError:
        says = "resolves to"
        try:
            found = await resolver(host, port)
        except (OSError, UnicodeError) as error:  # socket.gaierror is an OSError
            if allow_private:
                return None
            raise TargetRefused("the host does not resolve") from error
        addresses = [ip_address(text.partition("%")[0]) for text in found]
    if not addresses:
        raise TargetRefused("the host does not resolve")
    if not allow_private:
        for address in addresses:
            if (reason := refusal(address)) is not None:
                raise TargetRefused(f"the host {says} a {reason} address ({address})")
    return addresses[0]
