"""Password hashes take turns: at most `concurrency` at once per process, the next waits at most
`patience`, then is refused as overload (503 + Retry-After), never queued without end."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from ticketflow.adapters.security import Passwords
from ticketflow.domain.errors import Overloaded


class GatedHasher(PasswordHasher):
    """Hashes only once the test opens the gate (the decoy at start-up passes at once)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.gate, self.started = threading.Event(), threading.Event()
        self.ready = False

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if self.ready:
            self.started.set()
            self.gate.wait(10)
        return super().hash(password, salt=salt)


async def test_a_hash_past_the_bound_waits_its_patience_then_is_overload() -> None:
    hasher = GatedHasher()
    passwords = Passwords(hasher, concurrency=1, patience=0.05)
    hasher.ready = True
    first = asyncio.create_task(passwords.hash("first-password"))
    await asyncio.to_thread(hasher.started.wait, 10)  # the one turn is taken
    with pytest.raises(Overloaded) as refused:
        await passwords.hash("second-password")
    assert refused.value.retry_after >= 1
    hasher.gate.set()
    assert (await first).startswith("$argon2id$")
    assert (await passwords.hash("third-password")).startswith("$argon2id$")  # turn given back
