"""Waiting rooms in Redis, shared by every app instance: one room's keys share a hash tag, and
each step that changes the line is one Lua script (atomic), so no place is admitted twice and no
turn is handed out twice, whichever instances the requests reach. Times are integer ms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ticketflow.adapters.waiting_rooms import (
    LOST,
    RETRY_LOST,
    Advance,
    Place,
    Visit,
    from_ms,
    to_ms,
)
from ticketflow.domain.errors import RoomUnavailable
from ticketflow.domain.waiting_room import PRE_QUEUE_DRAWS, Allowance

# "outstanding": the admitted users not yet holding, by their session's end.
PARTS = (
    "marker",
    "places",
    "users",
    "line",
    "seen",
    "seq",
    "allowance",
    "spent",
    "opening",
    "outstanding",
)
MAX_SKIPS = 10_000  # abandoned places one visit may skip: bounds a script's run

# KEYS: marker places users line seen seq opening allowance. ARGV: user, ticket id, now, draw,
# PRE_QUEUE_DRAWS, "1" if the joining process's copy of the event says the sale has not opened.
# The line's own opening (written by `open`) decides, whatever that copy says; the copy only
# for a line opened before the opening was kept. The score is domain/waiting_room.py's
# place_score. Answers the user's place as _VISIT would look at it (its heartbeat too), so a
# join needs no second call.
_JOIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local ticket = redis.call('HGET', KEYS[3], ARGV[1])
if not ticket then
  ticket = ARGV[2]
  local arrival = redis.call('INCR', KEYS[6])
  local opening = redis.call('GET', KEYS[7])
  local pre = 0
  if (opening and tonumber(ARGV[3]) < tonumber(opening)) or (not opening and ARGV[6] == '1') then
    pre = 1
  end
  local score = ARGV[4]
  if pre == 0 then score = string.format('%.0f', tonumber(ARGV[5]) + arrival) end
  redis.call('ZADD', KEYS[4], score, ticket)
  redis.call('HSET', KEYS[2], ticket,
    cjson.encode({user = ARGV[1], joined = tonumber(ARGV[3]), pre = pre}))
  redis.call('HSET', KEYS[3], ARGV[1], ticket)
  redis.call('HSET', KEYS[5], ticket, ARGV[3])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    for i = 2, 7 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
local rank = redis.call('ZRANK', KEYS[4], ticket)
if rank then redis.call('HSET', KEYS[5], ticket, ARGV[3]) end
local served = tonumber(redis.call('HGET', KEYS[8], 'served') or '0')
return {'ok', ticket, redis.call('HGET', KEYS[2], ticket), rank, served,
  redis.call('GET', KEYS[1]), redis.call('ZCARD', KEYS[4])}
"""

# KEYS: marker places line seen allowance outstanding. ARGV: now, ticket id (""), advance?
# ("1"), since ("" none), due, earned, at, abandon before, max skips, unsold, session end, then
# pairs of (ticket id, seen at): heartbeats heard by an instance since its last visit, written
# before anyone is skipped. The allowance's `served` counts the places ever taken off the head
# of the line. `outstanding`: the admitted users not yet holding, by their session's end; the
# admissions given are capped as domain/waiting_room.py's `admissible` says.
_VISIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local now = tonumber(ARGV[1])
for i = 12, #ARGV, 2 do
  local had = redis.call('HGET', KEYS[4], ARGV[i])
  if had and tonumber(had) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  end
end
local waits, abandoned = {}, 0
if ARGV[3] == '1' and (redis.call('HGET', KEYS[5], 'at') or '') == ARGV[4] then
  local due, before, skips = tonumber(ARGV[5]), tonumber(ARGV[8]), tonumber(ARGV[9])
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
  local room_for = tonumber(ARGV[10]) - redis.call('ZCARD', KEYS[6])
  due = math.max(0, math.min(due, room_for))
  while #waits < due and abandoned < skips do
    local head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    if not head then break end
    redis.call('ZREM', KEYS[3], head)
    local place = cjson.decode(redis.call('HGET', KEYS[2], head))
    if tonumber(redis.call('HGET', KEYS[4], head) or '0') < before then
      place.abandoned = 1
      abandoned = abandoned + 1
    else
      place.admitted = now
      redis.call('ZADD', KEYS[6], ARGV[11], place.user)
      waits[#waits + 1] = now - place.joined
    end
    redis.call('HSET', KEYS[2], head, cjson.encode(place))
  end
  redis.call('HSET', KEYS[5], 'at', ARGV[7], 'earned', tostring(tonumber(ARGV[6]) - #waits))
  redis.call('HINCRBY', KEYS[5], 'served', #waits + abandoned)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[5], ttl)
    redis.call('PEXPIRE', KEYS[6], ttl)
  end
end
local raw, rank = false, false
if ARGV[2] ~= '' then
  raw = redis.call('HGET', KEYS[2], ARGV[2])
  rank = redis.call('ZRANK', KEYS[3], ARGV[2])
  if rank then redis.call('HSET', KEYS[4], ARGV[2], ARGV[1]) end
end
local served = tonumber(redis.call('HGET', KEYS[5], 'served') or '0')
local line = redis.call('GET', KEYS[1])
return {'ok', cjson.encode(waits), abandoned, redis.call('ZCARD', KEYS[3]), raw, rank, served, line}
"""


# KEYS: marker spent. ARGV: user. The room's keys all live as long as its marker.
_SPEND = """
redis.call('SADD', KEYS[2], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
"""

# KEYS: spent outstanding. ARGV: user. Whether their admission may hold (not spent); if so it
# is no longer outstanding (RoomStates.admits_hold).
_ADMITS_HOLD = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _keys(event_id: UUID) -> dict[str, str]:
    return {part: f"ticketflow:room:{{{event_id}}}:{part}" for part in PARTS}


class RedisRoomStates:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._join = redis.register_script(_JOIN)
        self._visit = redis.register_script(_VISIT)
        self._spend = redis.register_script(_SPEND)
        self._admits_hold = redis.register_script(_ADMITS_HOLD)

    async def open(self, event_id: UUID, keep_for: timedelta, opening: datetime | None) -> None:
        """The room's marker, kept for `keep_for` from now (relative: Redis's clock need not be
        the app's; the other keys follow it as they are written); an existing room keeps its
        line. `opening`: when the sale opens (None: it is open), kept with the line, which
        decides by it whether a join is in the pre-queue."""
        k = _keys(event_id)
        async with self._redis.pipeline(transaction=True) as steps:
            steps.set(k["marker"], str(uuid4()), nx=True)  # the line's identity (Visit.line)
            steps.pexpire(k["marker"], keep_for)
            steps.set(k["opening"], to_ms(opening) if opening else 0, px=keep_for)
            await self._call(steps.execute())

    async def allowance(self, event_id: UUID) -> Allowance | None:
        stored = await self._call(self._redis.hmget(_keys(event_id)["allowance"], "at", "earned"))
        at, earned = stored
        return Allowance(float(earned), from_ms(int(at))) if at is not None else None

    async def join(
        self,
        event_id: UUID,
        user_id: UUID,
        ticket_id: UUID,
        now: datetime,
        draw: int,
        pre_queue: bool,
    ) -> Visit:
        k = _keys(event_id)
        parts = ("marker", "places", "users", "line", "seen", "seq", "opening", "allowance")
        args: list[str | int] = [str(user_id), str(ticket_id), to_ms(now), str(draw)]
        answer = await self._call(
            self._join([k[part] for part in parts], [*args, PRE_QUEUE_DRAWS, int(pre_queue)])
        )
        _, ticket, raw, rank, served, line, waiting = _found(answer)
        joined = UUID(_text(ticket))
        place = _place(joined, json.loads(raw), rank)
        return Visit(place, [], 0, int(waiting), int(served), _text(line))

    async def visit(
        self,
        event_id: UUID,
        ticket_id: UUID | None,
        now: datetime,
        advance: Advance | None,
        heartbeats: Sequence[tuple[UUID, datetime]] = (),
    ) -> Visit:
        k = _keys(event_id)
        parts = ("marker", "places", "line", "seen", "allowance", "outstanding")
        keys = [k[part] for part in parts]
        args: list[Any] = [to_ms(now), str(ticket_id) if ticket_id else ""]
        if advance is None:
            args += ["0", "", 0, 0, 0, 0, 0, 0, 0]
        else:
            since = str(to_ms(advance.since)) if advance.since else ""
            at, before = to_ms(advance.at), to_ms(advance.abandon_before)
            args += ["1", since, advance.due, repr(advance.earned), at, before, MAX_SKIPS]
            args += [advance.unsold, to_ms(advance.session_ends)]
        for heard, seen in heartbeats:
            args += [str(heard), to_ms(seen)]
        answer = _found(await self._call(self._visit(keys, args)))
        _, waits, abandoned, waiting, raw, rank, served, line = answer
        place = _place(ticket_id, json.loads(raw), rank) if ticket_id and raw else None
        admitted = [wait / 1000 for wait in json.loads(waits) or []]
        return Visit(place, admitted, int(abandoned), int(waiting), int(served), _text(line))

    async def spend(self, event_id: UUID, user_id: UUID) -> None:
        k = _keys(event_id)
        await self._call(self._spend([k["marker"], k["spent"]], [str(user_id)]))

    async def admits_hold(self, event_id: UUID, user_id: UUID) -> bool:
        k = _keys(event_id)
        admits = self._admits_hold([k["spent"], k["outstanding"]], [str(user_id)])
        return bool(await self._call(admits))

    @staticmethod
    async def _call(step: Any) -> Any:
        try:
            return await step
        except RedisError as error:
            raise RoomUnavailable(
                "The waiting room can't be reached right now.", retry_after=5
            ) from error


def _found(answer: list[Any]) -> list[Any]:
    if _text(answer[0]) == "lost":
        raise RoomUnavailable(LOST, retry_after=RETRY_LOST)
    return answer


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _place(ticket_id: UUID, stored: dict[str, Any], rank: int | None) -> Place:
    admitted = stored.get("admitted")
    return Place(
        ticket_id=ticket_id,
        user_id=UUID(stored["user"]),
        joined_at=from_ms(stored["joined"]),
        pre_queue=bool(stored["pre"]),
        admitted_at=from_ms(admitted) if admitted is not None else None,
        abandoned=bool(stored.get("abandoned")),
        position=rank + 1 if rank is not None else None,
    )
