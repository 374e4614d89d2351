"""One signing scheme, both ways: what our deliveries carry and what the provider's callbacks are
checked with (adapters/webhook_signing.py), byte for byte the sandbox provider's own copy."""

from __future__ import annotations

import ast
import inspect

import pytest

from ticketflow.adapters import webhook_signing
from ticketflow.adapters.webhook_signing import signature_header, verify
from ticketflow.api.routes import payments as payment_routes
from ticketflow.payment_provider import signing as sandbox_signing

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"charge.succeeded"}'
AT = 1_700_000_000
TOLERANCE = 300


def test_a_signature_verifies_within_the_tolerance_either_side() -> None:
    header = signature_header(SECRET, AT, BODY)
    for now in (AT, AT + TOLERANCE, AT - TOLERANCE):
        assert verify(SECRET, BODY, header, now, TOLERANCE)
    for now in (AT + TOLERANCE + 1, AT - TOLERANCE - 1):
        assert not verify(SECRET, BODY, header, now, TOLERANCE)


def test_a_tampered_body_or_another_secret_does_not_verify() -> None:
    header = signature_header(SECRET, AT, BODY)
    assert not verify(SECRET, BODY.replace(b"succeeded", b"declined"), header, AT, TOLERANCE)
    assert not verify(SECRET, BODY + b" ", header, AT, TOLERANCE)
    assert not verify("whsec_other", BODY, header, AT, TOLERANCE)


def test_a_signature_for_another_time_does_not_verify_with_this_time() -> None:
    moved = signature_header(SECRET, AT, BODY).replace(f"t={AT}", f"t={AT + 1}")
    assert not verify(SECRET, BODY, moved, AT, TOLERANCE)


def test_one_matching_signature_among_several_verifies_during_a_rotation() -> None:
    old, new = signature_header("whsec_old", AT, BODY), signature_header(SECRET, AT, BODY)
    rotated = f"{old},{new.partition(',')[2]}"
    assert verify(SECRET, BODY, rotated, AT, TOLERANCE)
    assert verify("whsec_old", BODY, rotated, AT, TOLERANCE)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"t={AT}",  # no signature
        "v1=" + "0" * 64,  # no time
        f"t=soon,v1={'0' * 64}",
        f"t=-{AT},v1={'0' * 64}",
        f"t=1_700_000_000,v1={'0' * 64}",
        f"t={AT},t={AT},v1={'0' * 64}",  # two times: which one was signed?
        f"t={AT},v1=",
        f"t={AT},v1=é",
        f"t={AT},v0={{valid}}",  # a scheme we don't know is no signature
    ],
)
def test_a_malformed_header_does_not_verify(header: str) -> None:
    valid = webhook_signing.signature(SECRET, AT, BODY)
    assert not verify(SECRET, BODY, header.replace("{valid}", valid), AT, TOLERANCE)


def test_the_scheme_is_the_sandbox_providers_byte_for_byte() -> None:
    """The provider stands for a system we don't own and keeps its own copy; ours must accept
    what it signs, and sign as it does."""
    provider_header = sandbox_signing.sign(SECRET, BODY, AT)
    assert provider_header == signature_header(SECRET, AT, BODY)
    assert verify(SECRET, BODY, provider_header, AT, TOLERANCE)
    assert sandbox_signing.verify(SECRET, BODY, signature_header(SECRET, AT, BODY), AT)


def test_the_provider_callback_is_checked_with_our_helper_not_the_providers_code() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(inspect.getsource(payment_routes))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not any(name.startswith("ticketflow.payment_provider") for name in imported)
    assert payment_routes.webhook_signing is webhook_signing
