"""Which DAHDI channel an AudioSocket call came in on, and its numbers, from AMI events.

AudioSocket carries only a UUID: not the port, not the caller's number, not the number
dialled. The box's dialplan (:func:`appliance.box.ports.extensions_conf`) therefore sets
one channel variable before it hands the call over, ``APPLIANCE_CALL=<uuid>/<dahdi
channel>``, and Asterisk reports the set as an AMI ``VarSet`` event that also carries the
channel's caller ID and extension. :class:`ChannelMap` keeps those by UUID until the
AudioSocket connection with that UUID takes them (:meth:`ChannelMap.wait`): then the line
knows its port (for the admin's inbound route), its caller (screen pop, customer lookup)
and the number dialled (an E1's DNIS; an analog line has none). The two arrive on
different connections in either order, so the driver waits a moment for the event
(:data:`WAIT_S`) before it offers a call whose event has not come, and offers it without
them if it never does. Entries are dropped when taken, when AMI reports the channel's
hangup, and past :data:`MAX_ENTRIES` oldest first, so nothing grows without bound.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from drivers.asterisk.ami import Message

log = logging.getLogger("drivers.asterisk.channels")

#: the channel variable the box's dialplan sets: ``<AudioSocket UUID>/<DAHDI channel>``
CALL_VARIABLE: Final = "APPLIANCE_CALL"
#: how long an AudioSocket call waits for its channel's event before it is offered anyway
WAIT_S: Final = 0.5
MAX_ENTRIES: Final = 4096
#: caller ID values that mean "no number" (chan_dahdi without caller ID, a withheld one)
NO_NUMBER: Final = frozenset({"", "<unknown>", "unknown", "anonymous"})


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    channel: str  # Asterisk's name for it: DAHDI/3-1
    port: int | None  # the DAHDI channel number, as the lines page numbers ports
    caller: str  # the caller's number, "" when the line gave none
    callee: str  # the number dialled (DNIS), "" on a line that brings none


class ChannelMap:
    """AudioSocket UUID → :class:`ChannelInfo`, fed with AMI events (:meth:`on_event`)."""

    def __init__(self) -> None:
        self._known: OrderedDict[str, ChannelInfo] = OrderedDict()
        self._by_unique: dict[str, str] = {}  # AMI Uniqueid → UUID, for the hangup
        self._waiting: dict[str, asyncio.Future[ChannelInfo]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def on_event(self, event: Message) -> None:
        kind = event.get("Event")
        if kind == "VarSet" and event.get("Variable") == CALL_VARIABLE:
            self._learn(event)
        elif kind == "Hangup":
            call = self._by_unique.pop(event.get("Uniqueid", ""), None)
            if call is not None:
                self._known.pop(call, None)

    def _learn(self, event: Message) -> None:
        value = event.get("Value", "")
        call, _, chan = value.partition("/")
        try:
            call = str(uuid.UUID(call))
        except ValueError:
            log.warning("AMI: %s=%r on %s is not <uuid>/<channel>; the dialplan must set "
                        "it as the box generates it", CALL_VARIABLE, value,
                        event.get("Channel", "?"))
            return
        info = ChannelInfo(
            channel=event.get("Channel", ""),
            port=int(chan) if chan.isdigit() and int(chan) > 0 else None,
            caller=_number(event.get("CallerIDNum", "")),
            callee="" if event.get("Exten", "s") == "s" else _number(event.get("Exten", "")),
        )
        waiter = self._waiting.pop(call, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(info)
            return
        self._known[call] = info
        self._known.move_to_end(call)
        if unique := event.get("Uniqueid"):
            self._by_unique[unique] = call
        while len(self._known) > MAX_ENTRIES:
            old, _ = self._known.popitem(last=False)
            log.warning("AMI: call %s's channel was never taken by an AudioSocket call; "
                        "forgotten", old)
        if len(self._by_unique) > 2 * MAX_ENTRIES:
            self._by_unique = {u: c for u, c in self._by_unique.items() if c in self._known}

    def take(self, call: str) -> ChannelInfo | None:
        """The channel of AudioSocket call ``call`` if its event has come (and forget it)."""
        return self._known.pop(call, None)

    async def wait(self, call: str, timeout: float = WAIT_S) -> ChannelInfo | None:
        """The channel of ``call``, waiting up to ``timeout`` for its event; None if it does
        not come."""
        info = self.take(call)
        if info is not None:
            return info
        future: asyncio.Future[ChannelInfo] = asyncio.get_running_loop().create_future()
        self._waiting[call] = future
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            if self._waiting.get(call) is future:
                del self._waiting[call]


def _number(value: str) -> str:
    value = value.strip()
    return "" if value.lower() in NO_NUMBER else value


__all__ = ["CALL_VARIABLE", "WAIT_S", "ChannelInfo", "ChannelMap"]
