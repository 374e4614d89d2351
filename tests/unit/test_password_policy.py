"""The password policy: 10 to 128 characters, none of the 10,000 most common passwords."""

from __future__ import annotations

import pytest

from ticketflow.domain.errors import InvalidInput
from ticketflow.domain.passwords import check_new_password, most_common_passwords, password_problem
from ticketflow.services.demo import DEMO_PASSWORD

from ..builders import PASSWORD


@pytest.mark.parametrize(
    ("password", "refused_because"),
    [
        ("", "at least 10"),
        ("nine-char", "at least 10"),
        ("x" * 129, "at most 128"),
        ("qwertyuiop", "most common"),
        ("1234567890", "most common"),
        ("Password123", "most common"),  # the list is matched whatever the case
        ("1q2w3e4r5t", "most common"),
        ("ten-chars!", None),
        ("x" * 128, None),
        ("correct horse battery staple", None),
        ("ÄÖÜäöüß€ñé", None),  # ten characters, more bytes: characters are counted
        (PASSWORD, None),  # the tests' accounts
        (DEMO_PASSWORD, None),  # `make run`'s demo accounts, printed in the README
    ],
)
def test_policy(password: str, refused_because: str | None) -> None:
    problem = password_problem(password)
    if refused_because is None:
        assert problem is None
    else:
        assert problem is not None and refused_because in problem


def test_the_list_holds_the_ten_thousand_most_common() -> None:
    common = most_common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "letmein"} <= common


def test_a_refusal_names_the_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_new_password("qwertyuiop", field="new_password")
    assert refused.value.field == "new_password"
