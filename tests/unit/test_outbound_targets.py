"""The SSRF guard's rule: which addresses a webhook may go to, and where its connection goes."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from ticketflow.adapters.outbound_targets import TargetRefused, checked, refusal

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # the metadata service over IPv6 (a unique local address)
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fe80::1", "link-local (cloud metadata)"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # reserved (240/4): Python counts it private
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("192.0.2.1", "private"),  # documentation range
    ],
)
def test_addresses_inside_any_network_of_ours_are_refused(address: str, reason: str) -> None:
    assert refusal(ip_address(address)) == reason


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111"])
def test_public_unicast_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


def _dns(*answers: str) -> object:
    async def resolver(host: str, port: int) -> list[str]:
        return list(answers)

    return resolver


async def test_a_name_goes_to_the_address_checked_with_its_own_host_header_and_tls_name() -> None:
    target = await checked(
        "https://hooks.example:8443/in?x=1", allow_private=False, resolver=_dns(PUBLIC)
    )
    assert target.url == f"https://{PUBLIC}:8443/in?x=1"
    assert target.host_header == "hooks.example:8443"
    assert target.tls_name == "hooks.example"
    six = await checked("http://hooks.example/in", allow_private=False, resolver=_dns("2606::1"))
    assert six.url == "http://[2606::1]/in" and six.tls_name is None


async def test_a_name_with_any_inside_address_is_refused() -> None:
    with pytest.raises(TargetRefused, match="resolves to a loopback address"):
        await checked("http://rebind.example/", allow_private=False, resolver=_dns(PUBLIC, "::1"))


async def test_a_name_that_does_not_resolve_is_refused_unless_private_networks_are_allowed() -> (
    None
):
    async def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetRefused, match="does not resolve"):
        await checked("http://nowhere.example/", allow_private=False, resolver=nowhere)
    kept = await checked("http://nowhere.example/", allow_private=True, resolver=nowhere)
    assert kept.url == "http://nowhere.example/"


async def test_private_networks_allowed_still_pins_the_address_and_production_wants_https() -> None:
    local = await checked("http://127.0.0.1:9000/in", allow_private=True)
    assert local.url == "http://127.0.0.1:9000/in" and local.host_header == "127.0.0.1:9000"
    with pytest.raises(TargetRefused, match="https"):
        await checked("http://hooks.example/", allow_private=False, https_only=True)
