"""Writing a projected batch into the read models: a few statements per table, whatever its size
(queued to go with the transaction's next statement with `later`, adapters/direct_sql.py).

Tables are first written in one fixed order (READ_MODELS) and rows in key order, so concurrent
transactions, and the rebuild that locks the tables in this order, never wait in a circle.

Two steps: the rows (new ones, and bookings changed in place) first, then the shared counters of
ticket types (held, sold, available). A counter row is every writer's of its ticket type, so it
is written last, and a hold batch takes it just before it commits (UnitOfWork.commit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Integer, String, Table, bindparam, func, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.direct_sql import Direct
from ticketflow.adapters.tables import (
    rm_availability,
    rm_bookings,
    rm_event_sales,
    rm_ticket_type_sales,
)

Row = dict[str, Any]
Rows = Mapping[Table, Mapping[UUID, Row]]
# rm_bookings first: its rows are a writer's own, the counter tables' rows are shared.
READ_MODELS = (rm_bookings, rm_event_sales, rm_ticket_type_sales, rm_availability)
SALES_COUNTERS = ("held", "sold", "revenue_minor")


def _maybe(name: str, type_: Any) -> Any:
    """A column's new value, or NULL to keep it (COALESCE): one statement fits every row."""
    return bindparam(f"p_{name}", type_=type_)


_EVENT_SALES = Direct(
    update(rm_event_sales)
    .where(rm_event_sales.c.event_id == bindparam("p_key", type_=rm_event_sales.c.event_id.type))
    .values(
        title=func.coalesce(_maybe("title", String()), rm_event_sales.c.title),
        status=func.coalesce(_maybe("status", String()), rm_event_sales.c.status),
    )
)

_tts = rm_ticket_type_sales
_TICKET_TYPE_SALES = Direct(
    update(_tts)
    .where(_tts.c.ticket_type_id == bindparam("p_key", type_=_tts.c.ticket_type_id.type))
    .values(
        name=func.coalesce(_maybe("name", String()), _tts.c.name),
        currency=func.coalesce(_maybe("currency", String()), _tts.c.currency),
        price_minor=func.coalesce(_maybe("price_minor", BigInteger()), _tts.c.price_minor),
        held=_tts.c.held + bindparam("p_held", type_=Integer()),
        sold=_tts.c.sold + bindparam("p_sold", type_=Integer()),
        revenue_minor=_tts.c.revenue_minor + bindparam("p_revenue_minor", type_=BigInteger()),
    )
)

_av = rm_availability
_new_total = _maybe("total", Integer())
_AVAILABILITY = Direct(
    update(_av)
    .where(_av.c.ticket_type_id == bindparam("p_key", type_=_av.c.ticket_type_id.type))
    .values(
        total=func.coalesce(_new_total, _av.c.total),
        # A new total moves `available` by as much, as on ticket_types (SET reads the old total).
        available=_av.c.available
        + bindparam("p_available", type_=Integer())
        + func.coalesce(_new_total - _av.c.total, 0),
    )
)

_bk = rm_bookings
_by_booking = _bk.c.booking_id == bindparam("p_key", type_=_bk.c.booking_id.type)
_booking_status = {
    "status": bindparam("p_status", type_=_bk.c.status.type),
    "version": bindparam("p_version", type_=_bk.c.version.type),
    "updated_at": bindparam("p_updated_at", type_=_bk.c.updated_at.type),
}
_BOOKING_STATUS = Direct(update(_bk).where(_by_booking).values(**_booking_status))
# A confirmation also brings the tickets: one statement where two would do the same.
_BOOKING_CONFIRMED = Direct(
    update(_bk)
    .where(_by_booking)
    .values(**_booking_status, ticket_ids=bindparam("p_ticket_ids", type_=_bk.c.ticket_ids.type))
)


async def write_rows(
    connection: AsyncConnection,
    new: Rows,
    changed: Rows,
    moved: Mapping[UUID, Counter[str]],
    *,
    later: bool = False,
) -> None:
    """Step one, per table in READ_MODELS order: insert the `new` rows (with the counters
    `moved` added in), update bookings and events in place."""
    for key, counters in moved.items():
        for table, names in ((_tts, SALES_COUNTERS), (_av, ("available",))):
            row = new[table].get(key)
            if row is not None:
                row.update({name: row[name] + counters[name] for name in names})
    await _insert(connection, rm_bookings, new, later)
    bookings, status = changed[rm_bookings], tuple(_booking_status)
    confirmed = {key: row for key, row in bookings.items() if "ticket_ids" in row}
    others = {key: row for key, row in bookings.items() if key not in confirmed}
    await _update(connection, _BOOKING_STATUS, others, (), status, later)
    await _update(connection, _BOOKING_CONFIRMED, confirmed, (), (*status, "ticket_ids"), later)
    await _insert(connection, rm_event_sales, new, later)
    changed_events = changed[rm_event_sales]
    await _update(connection, _EVENT_SALES, changed_events, (), ("title", "status"), later)
    await _insert(connection, _tts, new, later)
    await _insert(connection, _av, new, later)


async def write_counters(
    connection: AsyncConnection,
    new: Rows,
    changed: Rows,
    moved: Mapping[UUID, Counter[str]],
    *,
    later: bool = False,
) -> None:
    """Step two: the ticket types' rows that exist already, their counters moved and their
    columns overwritten."""
    await _update(
        connection,
        _TICKET_TYPE_SALES,
        _merged(changed[_tts], moved, new[_tts]),
        SALES_COUNTERS,
        ("name", "currency", "price_minor"),
        later,
    )
    availability = _merged(changed[_av], moved, new[_av])
    await _update(connection, _AVAILABILITY, availability, ("available",), ("total",), later)


_INSERTS = {table: Direct(insert(table)) for table in READ_MODELS}


async def _insert(connection: AsyncConnection, table: Table, new: Rows, later: bool) -> None:
    rows = new[table]
    if rows:
        await _INSERTS[table].run_many(connection, [rows[key] for key in sorted(rows)], later=later)


def _merged(
    changed: Mapping[UUID, Row], moved: Mapping[UUID, Counter[str]], new: Mapping[UUID, Row]
) -> dict[UUID, Row]:
    """Changes to rows that exist already: overwritten columns and counter deltas together."""
    keys = (set(changed) | set(moved)) - set(new)
    return {key: {**moved.get(key, {}), **changed.get(key, {})} for key in keys}


async def _update(
    connection: AsyncConnection,
    statement: Direct,
    rows: Mapping[UUID, Row],
    counters: tuple[str, ...],
    columns: tuple[str, ...],
    later: bool,
) -> None:
    """`statement` once per row of `rows`, in key order; absent columns stay as they are,
    absent counters move by 0. A row none of whose counters moves and none of whose columns is
    overwritten is left out (a paid hold moves no ticket in or out of `available`)."""
    params = [
        {
            "p_key": key,
            **{f"p_{name}": rows[key].get(name, 0) for name in counters},
            **{f"p_{name}": rows[key].get(name) for name in columns},
        }
        for key in sorted(rows)
        if any(rows[key].get(name) for name in counters)
        or any(rows[key].get(name) is not None for name in columns)
    ]
    await statement.run_many(connection, params, later=later)
