"""The client IP for per-IP limits: X-Forwarded-For counts only when a trusted proxy sent it."""

from __future__ import annotations

from typing import Any

import pytest

from ticketflow.api.client_ip import client_ip, client_scheme, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 192.168.1.5")


def scope(peer: str | None, *forwarded_for: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return {"client": (peer, 443) if peer else None, "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", (), "203.0.113.9"),
        ("203.0.113.9", ("1.2.3.4",), "203.0.113.9"),  # not our proxy: the header is anyone's
        ("10.1.1.1", ("1.2.3.4",), "1.2.3.4"),
        ("10.1.1.1", ("6.6.6.6, 1.2.3.4",), "1.2.3.4"),  # the left part is the client's say-so
        ("10.1.1.1", ("1.2.3.4, 192.168.1.5",), "1.2.3.4"),  # a second proxy of ours: skipped
        ("10.1.1.1", ("1.2.3.4", "10.2.2.2"), "1.2.3.4"),  # the header sent twice
        ("10.1.1.1", (), "10.1.1.1"),  # a proxy calling us itself
        ("10.1.1.1", ("10.3.3.3",), "10.1.1.1"),
        ("10.1.1.1", ("not-an-ip",), "10.1.1.1"),  # garbage counts against the proxy
        ("10.1.1.1", ("2001:db8::1",), "2001:db8::1"),
        (None, ("1.2.3.4",), "unknown"),
    ],
)
def test_client_ip(peer: str | None, forwarded: tuple[str, ...], expected: str) -> None:
    assert client_ip(scope(peer, *forwarded), PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_ip(scope("10.1.1.1", "1.2.3.4"), ()) == "10.1.1.1"


def test_no_trusted_proxies_configured_is_an_empty_list() -> None:
    assert parse_networks("") == ()
    assert [str(n) for n in parse_networks("10.0.0.1,2001:db8::/32")] == [
        "10.0.0.1/32",
        "2001:db8::/32",
    ]


@pytest.mark.parametrize(
    ("peer", "own", "forwarded_proto", "expected"),
    [
        ("203.0.113.9", "http", (), "http"),
        ("203.0.113.9", "https", (), "https"),
        ("203.0.113.9", "http", ("https",), "http"),  # not our proxy: anyone can say https
        ("10.1.1.1", "http", ("https",), "https"),  # our proxy took the browser's https
        ("10.1.1.1", "http", ("HTTP",), "http"),
        ("10.1.1.1", "http", ("https, http",), "http"),  # the proxy next to us says last
        ("10.1.1.1", "http", ("gopher",), "http"),  # garbage: our own scheme
        ("10.1.1.1", "https", (), "https"),
    ],
)
def test_the_scheme_is_the_trusted_proxys_word_else_our_own(
    peer: str, own: str, forwarded_proto: tuple[str, ...], expected: str
) -> None:
    asked = {
        "client": (peer, 443),
        "scheme": own,
        "headers": [(b"x-forwarded-proto", value.encode()) for value in forwarded_proto],
    }
    assert client_scheme(asked, PROXIES) == expected
