"""Commands packed by hiredis are byte for byte what redis-py's own Python packer sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from ticketflow.adapters.redis_client import packed_by_hiredis

PYTHON_PACKER = Connection()  # never connected: only their pack_command is used
HIREDIS_PACKER = packed_by_hiredis(Connection)()
ARGUMENT = st.one_of(
    st.text(),
    st.binary(),
    st.integers(),
    st.floats(allow_nan=False),
    st.binary().map(memoryview),
    st.binary().map(bytearray),
)
NAMES = st.sampled_from(["XADD", "CLIENT SETNAME", b"CLIENT GETNAME", b"GET", "set"])


def _python(*args: object) -> bytes:
    return b"".join(PYTHON_PACKER.pack_command(*args))  # type: ignore[arg-type]


def pack_command(args: tuple[object, ...]) -> bytes:
    return b"".join(HIREDIS_PACKER.pack_command(*args))  # type: ignore[arg-type]


@given(NAMES, st.lists(ARGUMENT, max_size=12))
def test_every_argument_is_packed_as_redis_py_packs_it(name: object, args: list[object]) -> None:
    assert pack_command((name, *args)) == _python(name, *args)


def test_long_values_too() -> None:
    value = "é" * 10_000  # past redis-py's buffer cutoff, where it sends chunks
    assert pack_command(("SET", "k", value)) == _python("SET", "k", value)


@pytest.mark.parametrize("bad", [None, True, {"a": 1}, [1]])
def test_what_redis_py_refuses_is_refused_alike(bad: object) -> None:
    with pytest.raises(DataError):
        _python("SET", "k", bad)
    with pytest.raises(DataError):
        pack_command(("SET", "k", bad))
