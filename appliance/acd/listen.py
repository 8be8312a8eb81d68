"""Silent listen-in and whisper: a supervisor hears a seat's conversation from their own phone.

The supervisor picks a seat in a conversation and a phone to be rung (a seat line: the one
they are logged in to at the console, or any other seat not in a call). The box rings that
phone; when it is answered the phone's leg joins the conversation's bridge. In ``listen``
mode the leg is muted (it hears caller and agent mixed; nobody hears it); in ``whisper``
mode the bridge lets only the agent hear it, so the caller never does. The mode changes on
the live bridge, and leaving hangs up only the supervisor's leg; when the conversation ends
(either side hangs up) the leg is hung up too. Each start, join, change of mode and end is
a row in ``acd_monitor_log`` and a ``listen`` event for the control stream.

While a seat's phone serves as a supervisor's listening phone the ACD offers it no calls.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final

from sqlite_utils import Database

from appliance.acd.model import AgentState, SeatStatus
from appliance.acd.service import Acd, AcdError, _seat_line, _Talk
from appliance.calls.call import Call
from appliance.media.collector import seconds_to_ticks
from appliance.store.db import Store
from drivers.base import LineError

MODES: Final = ("listen", "whisper")
#: how long the supervisor's phone rings before the listen-in is given up
MONITOR_RING_SECONDS: Final = 30.0


@dataclass(eq=False)
class Monitor:
    """One supervisor listening to one seat's conversation."""

    key: str
    talk: _Talk
    phone: SeatStatus
    mode: str
    supervisor: str
    started_at: float
    call: Call | None = None  # the supervisor's leg, once placed
    joined: bool = False  # answered and in the bridge
    stop: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    def view(self) -> dict[str, Any]:
        return {"monitor": self.key, "seat": self.talk.seat.id, "agent": self.talk.seat.agent,
                "phone": self.phone.id, "mode": self.mode, "supervisor": self.supervisor,
                "joined": self.joined, "started_at": self.started_at}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise AcdError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def busy_phones(acd: Acd) -> set[str]:
    """Seats whose phones are listening in now (the ACD offers them nothing)."""
    return {m.phone.id for m in acd.monitors.values()}


def start(acd: Acd, seat_id: str, phone_seat: str, mode: str, supervisor: str) -> Monitor:
    """Ring ``phone_seat``'s phone and, on answer, listen to ``seat_id``'s conversation."""
    check_mode(mode)
    seat = acd.seat(seat_id)
    phone = acd.seat(phone_seat)
    if not supervisor.strip():
        raise AcdError("listen-in needs the supervisor's name")
    talk = acd._talks.get(seat_id)
    if talk is None or talk.caller.ended or talk.seat_call.ended:
        raise AcdError(f"seat {seat_id} is {seat.state.value}, not in a conversation: "
                             "nothing to listen to")
    if phone.id == seat.id:
        raise AcdError(f"seat {seat_id}: the supervisor's phone must be another seat's")
    if phone.id in acd._talks or phone.state in (AgentState.RINGING, AgentState.TALKING):
        raise AcdError(f"seat {phone_seat} is {phone.state.value}: its phone cannot "
                             "listen in now")
    if phone.id in busy_phones(acd):
        raise AcdError(f"seat {phone_seat}'s phone is already listening in")
    mon = Monitor(uuid.uuid4().hex, talk, phone, mode, supervisor.strip(), acd.now())
    acd.monitors[mon.key] = mon
    _record(acd, mon, "start")
    acd._spawn(_leg(acd, mon), f"listen-{mon.key}")
    return mon


def find(acd: Acd, key: str) -> Monitor:
    try:
        return acd.monitors[key]
    except KeyError:
        raise AcdError(f"no listen-in {key!r} in progress") from None


def set_mode(acd: Acd, key: str, mode: str) -> Monitor:
    """Listen or whisper from now on, without touching the call."""
    check_mode(mode)
    mon = find(acd, key)
    if mode != mon.mode:
        mon.mode = mode
        if mon.joined:
            _join(mon)
        _record(acd, mon, "mode")
    return mon


def stop(acd: Acd, key: str) -> Monitor:
    """The supervisor leaves: their leg is hung up, the conversation goes on."""
    mon = find(acd, key)
    if not mon.stop.done():
        mon.stop.set_result("left")
    return mon


def _join(mon: Monitor) -> None:
    assert mon.call is not None
    bridge = mon.talk.bridge
    if mon.mode == "listen":
        bridge.add(mon.call, muted=True)
    else:
        bridge.add(mon.call, heard_by=[mon.talk.seat_call])


async def _leg(acd: Acd, mon: Monitor) -> None:
    """Ring the supervisor's phone, join on answer, and last as long as the conversation."""
    assert acd.engine is not None
    engine, talk = acd.engine, mon.talk
    futures: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(talk.caller.wait_ended()),
        asyncio.ensure_future(talk.seat_call.wait_ended())]
    why = "call-ended"
    try:
        try:
            mon.call = await engine.originate(
                acd._driver(mon.phone.config.driver), mon.phone.config.number,
                flow=_seat_line, caller=talk.seat.config.number,
                ring_timeout=MONITOR_RING_SECONDS + 10)
        except LineError:
            why = "unreachable"
            return
        answered = asyncio.ensure_future(mon.call.wait_answered())
        timer = engine.wait_ticks(None, seconds_to_ticks(MONITOR_RING_SECONDS))
        futures += [answered, timer]
        await asyncio.wait([*futures, mon.stop], return_when=asyncio.FIRST_COMPLETED)
        if mon.stop.done():
            why = mon.stop.result()
            return
        if not (answered.done() and answered.exception() is None):
            why = "no-answer" if timer.done() or answered.done() else "call-ended"
            return
        if talk.caller.ended or talk.seat_call.ended:
            return
        _join(mon)
        mon.joined = True
        _record(acd, mon, "joined")
        phone_gone = asyncio.ensure_future(mon.call.wait_ended())
        futures.append(phone_gone)
        await asyncio.wait([*futures[:2], phone_gone, mon.stop],
                           return_when=asyncio.FIRST_COMPLETED)
        if mon.stop.done():
            why = mon.stop.result()
        elif phone_gone.done() and not (talk.caller.ended or talk.seat_call.ended):
            why = "supervisor-hung-up"
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # retrieved: a call that ended while ringing is expected
        acd.monitors.pop(mon.key, None)
        acd._dispatch()  # the phone's seat may take calls again
        if not mon.stop.done():
            mon.stop.set_result(why)
        mon.joined = False
        _record(acd, mon, "stop", why)
        if mon.call is not None:
            if mon.call.bridge is not None:
                mon.call.bridge.remove(mon.call)
            await mon.call.hangup("listen-end")


def _record(acd: Acd, mon: Monitor, action: str, why: str = "") -> None:
    now = acd.now()
    call_id = mon.call.id if mon.call is not None else None
    if acd.store is not None:
        log_monitor(acd.store, mon, action, why, call_id, now)
    acd._emit("listen", action=action, why=why, call=call_id or "", at=now, **mon.view())


def log_monitor(store: Store, mon: Monitor, action: str, why: str, call_id: str | None,
                at: float) -> Future[None]:
    row = [mon.key, action, mon.mode, mon.talk.seat.id, mon.talk.seat.agent,
           mon.talk.entry.key, mon.phone.id, mon.supervisor, call_id, why, at]

    def write(db: Database) -> None:
        db.execute("INSERT INTO acd_monitor_log (monitor, action, mode, seat_id, agent,"
                   " entry_key, phone_seat, supervisor, call_id, why, at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    return store.submit(write)


def monitor_log(store: Store, monitor: str | None = None) -> list[dict[str, Any]]:
    if monitor is None:
        return store.query("SELECT * FROM acd_monitor_log ORDER BY id")
    return store.query("SELECT * FROM acd_monitor_log WHERE monitor = ? ORDER BY id",
                       [monitor])


__all__ = ["MODES", "MONITOR_RING_SECONDS", "Monitor", "busy_phones",
           "check_mode", "find", "log_monitor", "monitor_log", "set_mode", "start", "stop"]
