"""The password policy: 10 to 128 characters, and none of the 10,000 most common passwords."""

from __future__ import annotations

from functools import cache

from ticketflow.domain.errors import InvalidInput

MIN_LENGTH = 10
# argon2 takes any length, but an unbounded one is free CPU for whoever sends a megabyte.
MAX_LENGTH = 128
COMMON_KEPT = 10_000


@cache
def most_common_passwords() -> frozenset[str]:
    """The 10,000 most used passwords, lowercase: the head of the password frequency list that
    zxcvbn ships (Burnett's ten million leaked passwords, the source of SecLists'
    10k-most-common.txt). Read on first use: importing the list costs ~50 ms and ~12 MB."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_KEPT])


def password_problem(password: str) -> str | None:
    """What keeps `password` from being accepted as a new password, if anything."""
    if len(password) < MIN_LENGTH:
        return f"The password needs at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"The password may have at most {MAX_LENGTH} characters."
    # The list is lowercase: "Qwertyuiop" is guessed as early as "qwertyuiop".
    if password.lower() in most_common_passwords():
        return "This password is among the most common ones, which are guessed first; pick another."
    return None


def check_new_password(password: str, field: str) -> None:
    """Refuse a password that breaks the policy: a 422 naming `field`."""
    if (problem := password_problem(password)) is not None:
        raise InvalidInput(problem, field=field)
