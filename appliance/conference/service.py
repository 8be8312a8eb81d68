"""Teleconference rooms at run time (R14): callers key a room number and PIN and talk
together on the engine's own mixer (a :class:`~appliance.calls.bridge.Bridge`: each party
hears everyone else, never their own voice), up to 8 parties a room.

The first caller in with the host PIN is the room's host while they stay; the web acts
for them through :meth:`Conferences.mute` and :meth:`Conferences.drop`, which name the
host's party id and refuse anyone else. Everyone hears a rising tone when a party comes
in and a falling one when a party leaves. A wrong room or PIN gets "not correct" and
another try (three in all); a full room is refused with "the room is full". Every join,
leave, mute, drop and refusal is a row of ``conference_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

import numpy as np

from appliance.calls.bridge import Bridge
from appliance.calls.call import Call, CallEnded, FlowFn
from appliance.conference import rooms
from appliance.media.frame import SAMPLE_RATE
from appliance.media.prompts import Prompt
from appliance.store.db import Store

log = logging.getLogger("appliance.conference")

#: the number that goes straight to the rooms (the IVR's menu offers them too)
DEFAULT_NUMBER: Final = "95599"
TRIES: Final = 3
ENTRY_TIMEOUT: Final = 8.0
DROP_CAUSE: Final = "conference-dropped"
#: how long a tone may wait for a party to finish hearing something else (ticks)
TONE_WAIT_TICKS: Final = 15 * 50

Listener = Callable[[str, dict[str, Any]], None]


class ConferenceError(ValueError):
    """A control request refused (unknown room or party, not the host); says why."""


@dataclass(eq=False)
class _Party:
    call: Call
    host: bool
    joined_at: float


@dataclass(eq=False)
class _LiveRoom:
    room: rooms.Room
    bridge: Bridge
    parties: dict[str, _Party] = field(default_factory=dict)  # by call id, in join order

    @property
    def host(self) -> _Party | None:
        return next((p for p in self.parties.values() if p.host), None)


@dataclass(frozen=True, slots=True)
class PartyView:
    id: str
    caller: str
    host: bool
    muted: bool
    joined_at: float


def _tone(name: str, notes: tuple[float, ...]) -> Prompt:
    n = int(0.15 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    env = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    pcm = np.concatenate([np.sin(2 * np.pi * f * t) * env for f in notes]) * 0.25 * 32767
    return Prompt.from_samples(name, np.round(pcm).astype(np.int16))


@cache
def entry_tone() -> Prompt:
    """A party came in: two rising notes (one at a time: never a DTMF pair)."""
    return _tone("conf_entry_tone", (660.0, 880.0))


@cache
def exit_tone() -> Prompt:
    """A party left: the same notes falling."""
    return _tone("conf_exit_tone", (880.0, 660.0))


class Conferences:
    """The rooms of one box; :meth:`join` is what the IVR's ``conference`` node awaits."""

    def __init__(self, store: Store, *, executor: Executor | None = None) -> None:
        self.store = store
        self.executor = executor
        self._live: dict[str, _LiveRoom] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(kind, data)`` on join, leave, mute, unmute, drop and refusals."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, kind: str, **data: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, data)
            except Exception:
                log.exception("conference listener failed on %s", kind)

    def _log(self, room: str, call: Call, event: str, *, host: bool = False) -> None:
        rooms.log_event(self.store, room, call.id, call.caller, event, call.engine.clock.wall(),
                        host=host)
        self._emit(event, room=room, party=call.id, caller=call.caller, host=host)

    # ------------------------------------------------------------------ callers
    async def join(self, call: Call) -> str:
        """Ask ``call`` for a room and PIN and keep it in the room until it hangs up or is
        dropped. Returns ``left``, ``dropped``, ``full``, ``refused`` (three wrong tries)
        or ``hung-up``."""
        try:
            for _ in range(TRIES):
                call.flush_keys()
                room_no = await call.collect(rooms.ROOM_DIGITS[1], first_timeout=ENTRY_TIMEOUT,
                                             inter_timeout=5.0, prompt=["conf_enter_room"])
                pin = await call.collect(rooms.PIN_DIGITS[1], first_timeout=ENTRY_TIMEOUT,
                                         inter_timeout=5.0, prompt=["conf_enter_pin"],
                                         secret=True)
                loop = asyncio.get_running_loop()
                found = await loop.run_in_executor(self.executor, rooms.check_pin, self.store,
                                                   room_no.digits.strip("#"),
                                                   pin.digits.strip("#"))
                if found is None:
                    self._log(room_no.digits.strip("#") or "-", call, "refused-pin")
                    await call.play("conf_wrong", interruptible=False)
                    continue
                room, is_host = found
                live = self._live.get(room.room)
                if live is not None and len(live.parties) >= room.max_parties:
                    self._log(room.room, call, "refused-full")
                    await call.play("conf_full", interruptible=False)
                    return "full"
                return await self._take_part(call, room, is_host)
            return "refused"
        except CallEnded:
            return "hung-up"

    async def _take_part(self, call: Call, room: rooms.Room, is_host: bool) -> str:
        live = self._live.get(room.room)
        if live is None:
            live = self._live[room.room] = _LiveRoom(room, Bridge(f"conf-{room.room}"))
        # Host while no other host is in the room: the first one in with the host PIN.
        host = is_host and live.host is None
        live.parties[call.id] = _Party(call, host, call.engine.clock.wall())
        live.bridge.add(call)
        self._log(room.room, call, "join", host=host)
        self._tone_to_others(live, call, entry_tone())
        try:
            await call.play("conf_joined", interruptible=False)
            await call.wait_ended()
        except CallEnded:
            pass
        finally:
            live.bridge.remove(call)
            party = live.parties.pop(call.id, None)
            if party is not None:
                self._log(room.room, call, "leave", host=party.host)
                self._tone_to_others(live, call, exit_tone())
            if not live.parties:
                self._live.pop(room.room, None)
        return "dropped" if call.end_cause == DROP_CAUSE else "left"

    def _tone_to_others(self, live: _LiveRoom, call: Call, tone: Prompt) -> None:
        for party in list(live.parties.values()):
            if party.call is not call and not party.call.ended:
                self._spawn(_play_when_free(party.call, tone), f"tone-{party.call.id}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def flow(self) -> FlowFn:
        """A whole call to the conference number: answer, join, goodbye."""
        async def conference_flow(call: Call) -> None:
            await call.answer()
            outcome = await self.join(call)
            if outcome in ("refused", "full"):
                await call.play("goodbye", interruptible=False)
            await call.hangup()

        return conference_flow

    def route(self, numbers: Collection[str], default: FlowFn) -> FlowFn:
        """The engine's flow: calls to one of ``numbers`` go straight to a room; all
        others to ``default`` (the IVR, whose menu offers the rooms as well)."""
        direct = self.flow()
        wanted = frozenset(numbers)

        async def by_number(call: Call) -> None:
            await (direct if call.callee in wanted else default)(call)

        return by_number

    # ------------------------------------------------------------------ host control
    def _room(self, room: str) -> _LiveRoom:
        live = self._live.get(room)
        if live is None:
            raise ConferenceError(f"room {room!r} has nobody in it (rooms in use: "
                                  f"{', '.join(sorted(self._live)) or 'none'})")
        return live

    def _by_host(self, room: str, host: str, party: str) -> tuple[_LiveRoom, _Party]:
        live = self._room(room)
        boss = live.host
        if boss is None or boss.call.id != host:
            raise ConferenceError(f"room {room}: {host!r} is not the room's host")
        target = live.parties.get(party)
        if target is None:
            raise ConferenceError(f"room {room}: no party {party!r} (parties: "
                                  f"{', '.join(live.parties)})")
        return live, target

    def in_use(self) -> list[str]:
        """The rooms with somebody in them now."""
        return sorted(self._live)

    def parties(self, room: str) -> list[PartyView]:
        """Who is in ``room`` now, in the order they came in."""
        live = self._room(room)
        return [PartyView(id=p.call.id, caller=p.call.caller, host=p.host,
                          muted=p.call in live.bridge.muted, joined_at=p.joined_at)
                for p in live.parties.values()]

    def mute(self, room: str, party: str, *, host: str, muted: bool = True) -> PartyView:
        """The host (``host``: their party id) mutes or unmutes ``party``: a muted party
        still hears the room but is not heard."""
        live, target = self._by_host(room, host, party)
        live.bridge.add(target.call, muted=muted)
        self._log(room, target.call, "mute" if muted else "unmute", host=target.host)
        return next(v for v in self.parties(room) if v.id == party)

    def drop(self, room: str, party: str, *, host: str) -> None:
        """The host drops ``party`` from the room: it is out of the mix at once and its
        call is hung up."""
        live, target = self._by_host(room, host, party)
        if target.host:
            raise ConferenceError(f"room {room}: the host leaves by hanging up, not by drop")
        live.bridge.remove(target.call)
        self._log(room, target.call, "drop")
        self._spawn(target.call.hangup(DROP_CAUSE), f"drop-{party}")


async def _play_when_free(call: Call, tone: Prompt) -> None:
    """Play ``tone`` to ``call`` once it hears only the room again: a party still hearing
    their own "you are in" (or another tone) is not cut off, and still gets the tone."""
    with contextlib.suppress(CallEnded):
        for _ in range(TONE_WAIT_TICKS // 5):
            if call.ended:
                return
            if call.source is None:
                await call.play(tone, interruptible=False)
                return
            await call.engine.wait_ticks(call, 5)


__all__ = ["DEFAULT_NUMBER", "DROP_CAUSE", "ConferenceError", "Conferences", "PartyView",
           "entry_tone", "exit_tone"]
