"""Bridges: 2 to N calls that hear each other, mixed by the engine itself.

The engine mixes instead of asking a switch to, so recording, listen-in and conferences
work the same on every kind of line. Each tick a bridge takes its members' inbound frames
(silence for a member whose frame was late) and gives each member everyone else's voice
(``mix_minus``), once per tick however many members there are. A member can be muted (it
hears but is not heard: silent listen-in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.media.mixer import mix_minus

if TYPE_CHECKING:
    from appliance.calls.call import Call


class Bridge:
    """Created with :meth:`Engine.create_bridge`; calls join with :meth:`add`."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.members: list[Call] = []
        self.muted: set[Call] = set()
        self._tick = -1
        self._out: dict[Call, bytes] = {}

    def add(self, call: Call, *, muted: bool = False) -> None:
        if call.bridge is not None and call.bridge is not self:
            call.bridge.remove(call)
        if call not in self.members:
            self.members.append(call)
        call.bridge = self
        if muted:
            self.muted.add(call)
        else:
            self.muted.discard(call)

    def remove(self, call: Call) -> None:
        if call in self.members:
            self.members.remove(call)
        self.muted.discard(call)
        self._out.pop(call, None)
        if call.bridge is self:
            call.bridge = None

    def frame_for(self, call: Call, tick: int) -> bytes:
        """What ``call`` hears in this tick: every other member, mixed."""
        if tick != self._tick:
            members = self.members
            frames = mix_minus([m.inbound_frame or _SILENT for m in members],
                               [m not in self.muted for m in members])
            self._out = dict(zip(members, frames, strict=True))
            self._tick = tick
        return self._out.get(call, _SILENT)

    def __len__(self) -> int:
        return len(self.members)


_SILENT = bytes(320)
