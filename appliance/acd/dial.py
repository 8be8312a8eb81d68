"""Click-to-dial: the agent's own seat phone is rung first, then the customer.

The web looks the customer's number up (the browser never sends it, and a role that may
not see it never receives it) and asks the engine to dial it for a seat. The seat goes to
ringing at once (so no queue call is offered to it meanwhile) and its phone rings; when the
agent answers they hear ringback while the box dials the customer on a trunk line, as a
booked callback does. When the customer answers, the two are bridged by the ACD's usual
conversation (:meth:`Acd._converse`): recorded, with hold, hang-up, wrap-up and the
etiquette facts on the call's ``acd_entries`` row (outcome ``dialled``), counted as the
seat's call. A dial that does not reach the customer puts the seat back to not ready (with
its reason) if it was, else to ready. Each dial is a row in ``acd_dials`` and ``dial``
events on the control stream, which never carry the number.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import Future
from typing import Any, Final

from sqlite_utils import Database

from appliance.acd import records
from appliance.acd.listen import busy_phones
from appliance.acd.model import AgentState, SeatStatus
from appliance.acd.routing import Entry
from appliance.acd.service import CALLBACK_RING_SECONDS, Acd, AcdError, _Queue, _seat_line
from appliance.calls.call import Call
from appliance.media.collector import seconds_to_ticks
from appliance.store.db import Store
from drivers.base import LineError

#: how long the agent's own phone rings before the dial is given up
SEAT_RING_SECONDS: Final = 20.0
#: how long the customer's phone rings
CUSTOMER_RING_SECONDS: Final = CALLBACK_RING_SECONDS
LANGUAGES: Final = ("zh", "yue", "en")
_NUMBER: Final = re.compile(r"\+?[0-9]{3,20}")


def start(acd: Acd, seat_id: str, number: str, *, customer: str = "", queue: str = "",
          language: str = "zh") -> str:
    """Ring ``seat_id``'s phone, then ``number``; returns the dial's key. Refused (AcdError)
    unless the seat is logged in and free."""
    seat = acd.seat(seat_id)
    if seat.state is AgentState.LOGGED_OUT:
        raise AcdError(f"seat {seat_id} is logged out: log in to dial")
    if seat.state in (AgentState.RINGING, AgentState.TALKING) or seat_id in acd._talks:
        raise AcdError(f"seat {seat_id} is {seat.state.value}: dial after the call")
    if seat_id in busy_phones(acd):
        raise AcdError(f"seat {seat_id}'s phone is listening in: dial after that")
    if not _NUMBER.fullmatch(number):
        raise AcdError("number: expected 3-20 digits (a leading + allowed)")
    if language not in LANGUAGES:
        raise AcdError(f"language {language!r}: expected one of {', '.join(LANGUAGES)}")
    q = _queue_for(acd, seat, queue)
    if acd.engine is None:
        raise AcdError("the ACD is not bound to an engine yet: no line to dial on")
    key = uuid.uuid4().hex
    before = (seat.state, seat.reason)
    now = acd.now()
    acd._set_state(seat, AgentState.RINGING, q.config.name)
    if acd.store is not None:
        _open(acd.store, key, seat, customer, q.config.name, now)
    acd._emit("dial", action="ringing-seat", dial=key, seat=seat.id, agent=seat.agent,
              customer=customer, queue=q.config.name, at=now)
    acd._spawn(_run(acd, key, q, seat, number, customer, language, before), f"dial-{key}")
    return key


def _queue_for(acd: Acd, seat: SeatStatus, name: str) -> _Queue:
    """The queue the call counts for: the one named, else the first the seat serves."""
    if name:
        q = acd._queue(name)
        if q.config.penalty(seat.id) is None:
            raise AcdError(f"seat {seat.id} does not serve queue {name}")
        return q
    for q in acd.queues.values():
        if q.config.penalty(seat.id) is not None:
            return q
    raise AcdError(f"seat {seat.id} serves no queue: its calls would count nowhere")


async def _run(acd: Acd, key: str, q: _Queue, seat: SeatStatus, number: str, customer: str,
               language: str, before: tuple[AgentState, str]) -> None:
    assert acd.engine is not None
    engine = acd.engine
    seat_call: Call | None = None
    callee: Call | None = None
    tone: asyncio.Future[None] | None = None
    outcome = "failed"
    connected = False
    try:
        rang_at = acd.now()
        try:
            seat_call = await engine.originate(
                acd._driver(seat.config.driver), seat.config.number, flow=_seat_line,
                ring_timeout=SEAT_RING_SECONDS + 10)
        except LineError:
            outcome = "seat-unreachable"
            return
        if not await _answered(acd, seat_call, SEAT_RING_SECONDS):
            outcome = "seat-no-answer"
            return
        ring_seconds = (seat_call.answered_at or acd.now()) - rang_at
        acd._set_state(seat, AgentState.TALKING, q.config.name)
        tone = asyncio.ensure_future(
            seat_call.play_tone("ringback", CUSTOMER_RING_SECONDS + 5))
        placed = acd.now()
        try:
            callee = await engine.originate(acd._driver(seat.config.driver), number,
                                            flow=_seat_line,
                                            ring_timeout=CUSTOMER_RING_SECONDS)
        except LineError:
            outcome = "unreachable"
            return
        callee.language = language
        entry = Entry(key=key, queue=q.config.name, caller=number, language=language,
                      priority=0, joined_at=placed)
        if acd.store is not None:
            records.open_entry(acd.store, key, q.config.name, callee.id, number, language, 0,
                               placed)
            _placed(acd.store, key, seat_call.id, callee.id)
        acd._emit("dial", action="ringing-customer", dial=key, seat=seat.id,
                  agent=seat.agent, customer=customer, call=callee.id, at=placed)
        if not await _answered(acd, callee, CUSTOMER_RING_SECONDS, also=seat_call):
            outcome = "agent-hung-up" if seat_call.ended else "no-answer"
            if acd.store is not None:
                records.close_entry(acd.store, key, "dial-failed", acd.now(),
                                    acd.now() - placed)
            return
        tone.cancel()
        seat_call.stop_playing()
        outcome, connected = "answered", True
        _closed(acd, key, seat, outcome, customer)
        await acd._converse(q, entry, seat, seat_call, callee, None, outcome="dialled",
                            ring_seconds=ring_seconds)
    finally:
        if tone is not None:
            tone.cancel()
        if not connected:
            _closed(acd, key, seat, outcome, customer)
            seat.idle_since = acd.now()
            state, reason = before
            if state is AgentState.NOT_READY:
                acd._set_state(seat, state, reason)
            else:
                acd._set_state(seat, AgentState.READY)
            await asyncio.gather(*(c.hangup("dial-failed") for c in (callee, seat_call)
                                   if c is not None))


async def _answered(acd: Acd, call: Call, seconds: float, also: Call | None = None) -> bool:
    """True once ``call`` is answered within ``seconds`` (and ``also`` is still on)."""
    assert acd.engine is not None
    answered = asyncio.ensure_future(call.wait_answered())
    waits: set[asyncio.Future[Any]] = {
        answered, acd.engine.wait_ticks(None, seconds_to_ticks(seconds))}
    if also is not None:
        waits.add(asyncio.ensure_future(also.wait_ended()))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for fut in waits:
        if not fut.done():
            fut.cancel()
    ok = answered.done() and not answered.cancelled() and answered.exception() is None
    return ok and not call.ended and (also is None or not also.ended)


def _closed(acd: Acd, key: str, seat: SeatStatus, outcome: str, customer: str) -> None:
    now = acd.now()
    if acd.store is not None:
        _close(acd.store, key, outcome, now)
    acd._emit("dial", action=outcome, dial=key, seat=seat.id, agent=seat.agent,
              customer=customer, at=now)


def _open(store: Store, key: str, seat: SeatStatus, customer: str, queue: str,
          at: float) -> Future[None]:
    row = [key, seat.id, seat.agent, customer, queue, at]

    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_dials (key, seat_id, agent, customer, queue, requested_at)"
                   " VALUES (?, ?, ?, ?, ?, ?)", row)

    return store.submit(write)


def _placed(store: Store, key: str, seat_call: str, call: str) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("UPDATE acd_dials SET seat_call_id = ?, call_id = ? WHERE key = ?",
                   [seat_call, call, key])

    return store.submit(write)


def _close(store: Store, key: str, outcome: str, at: float) -> Future[None]:
    def write(db: Database) -> None:
        db.execute("UPDATE acd_dials SET outcome = ?, ended_at = ? WHERE key = ?",
                   [outcome, at, key])

    return store.submit(write)


def dials(store: Store) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM acd_dials ORDER BY requested_at, key")


__all__ = ["CUSTOMER_RING_SECONDS", "LANGUAGES", "SEAT_RING_SECONDS", "dials", "start"]
