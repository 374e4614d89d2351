"""Admission tokens: one buyer, one event, one session; nothing else passes for one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.adapters.admission_tokens import AdmissionTokens
from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.security import SigningKeys, Tokens
from ticketflow.domain.errors import NotAdmitted
from ticketflow.domain.model import Role

KEYS = SigningKeys({"k1": "a-test-secret-of-enough-length-for-hs256"}, "k1")
BUYER, OTHER, EVENT, OTHER_EVENT, PLACE = (uuid.uuid4() for _ in range(5))
SESSION = timedelta(minutes=10)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def tokens(clock: ManualClock) -> AdmissionTokens:
    return AdmissionTokens(KEYS, clock, issuer="ticketflow", audience="ticketflow-api")


def test_an_admission_admits_its_buyer_on_its_event_during_its_session(
    tokens: AdmissionTokens, clock: ManualClock
) -> None:
    token = tokens.issue(BUYER, EVENT, PLACE, clock.now(), SESSION)
    assert token == tokens.issue(BUYER, EVENT, PLACE, clock.now(), SESSION)  # any instance
    assert tokens.admission(token, BUYER, EVENT).ticket_id == PLACE
    clock.advance(SESSION.total_seconds() - 1)
    tokens.admission(token, BUYER, EVENT)
    clock.advance(1)
    with pytest.raises(NotAdmitted, match="session has ended"):
        tokens.admission(token, BUYER, EVENT)


@pytest.mark.parametrize(
    ("user", "event", "reason"),
    [(OTHER, EVENT, "another buyer"), (BUYER, OTHER_EVENT, "another event")],
)
def test_an_admission_is_refused_to_another_buyer_or_event(
    tokens: AdmissionTokens, clock: ManualClock, user: uuid.UUID, event: uuid.UUID, reason: str
) -> None:
    token = tokens.issue(BUYER, EVENT, PLACE, clock.now(), SESSION)
    with pytest.raises(NotAdmitted, match=reason):
        tokens.admission(token, user, event)


def test_no_token_a_forged_one_or_an_access_token_is_not_an_admission(
    tokens: AdmissionTokens, clock: ManualClock
) -> None:
    for missing in (None, ""):
        with pytest.raises(NotAdmitted, match="waiting room is on"):
            tokens.admission(missing, BUYER, EVENT)
    token = tokens.issue(BUYER, EVENT, PLACE, clock.now(), SESSION)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(NotAdmitted, match="invalid"):
        tokens.admission(forged, BUYER, EVENT)
    access = Tokens(
        KEYS, SESSION, SESSION, clock, issuer="ticketflow", audience="ticketflow-api"
    ).access_token(BUYER, Role.USER, uuid.uuid4(), clock.now())
    with pytest.raises(NotAdmitted):
        tokens.admission(access, BUYER, EVENT)
    other_keys = SigningKeys({"k1": "another-secret-entirely-of-enough-length"}, "k1")
    foreign = AdmissionTokens(other_keys, clock, issuer="ticketflow", audience="ticketflow-api")
    with pytest.raises(NotAdmitted, match="invalid"):
        tokens.admission(foreign.issue(BUYER, EVENT, PLACE, clock.now(), SESSION), BUYER, EVENT)
