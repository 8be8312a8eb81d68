"""Bridges: 2 to N calls that hear each other, mixed by the engine itself.

The engine mixes instead of asking a switch to, so recording, listen-in and conferences
work the same on every kind of line. Each tick a bridge takes its members' inbound frames
(silence for a member whose frame was late) and gives each member everyone else's voice
(``mix_minus``), once per tick however many members there are. A member can be muted (it
hears but is not heard: silent listen-in), or heard only by some members (``heard_by``: a
supervisor whispering to the agent, whom the caller must not hear); only a bridge with such
a member pays for the per-party rule (:func:`~appliance.media.mixer.mix_heard`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from appliance.media.mixer import mix_heard, mix_minus

if TYPE_CHECKING:
    from appliance.calls.call import Call


class Bridge:
    """Created with :meth:`Engine.create_bridge`; calls join with :meth:`add`."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.members: list[Call] = []
        self.muted: set[Call] = set()
        #: members only some others hear (whisper): member -> who hears it
        self.heard_only_by: dict[Call, frozenset[Call]] = {}
        self._hears: npt.NDArray[np.int32] | None = None  # made again after each change
        self._tick = -1
        self._out: dict[Call, bytes] = {}

    def add(self, call: Call, *, muted: bool = False,
            heard_by: Iterable[Call] | None = None) -> None:
        """``call`` joins (or changes how it is heard): ``muted``, nobody hears it;
        ``heard_by``, only those members hear it; neither, everyone does."""
        if call.bridge is not None and call.bridge is not self:
            call.bridge.remove(call)
        if call not in self.members:
            self.members.append(call)
        call.bridge = self
        if muted:
            self.muted.add(call)
        else:
            self.muted.discard(call)
        if heard_by is not None:
            self.heard_only_by[call] = frozenset(heard_by)
        else:
            self.heard_only_by.pop(call, None)
        self._hears = None

    def remove(self, call: Call) -> None:
        if call in self.members:
            self.members.remove(call)
        self.muted.discard(call)
        self.heard_only_by.pop(call, None)
        self._hears = None
        self._out.pop(call, None)
        if call.bridge is self:
            call.bridge = None

    def frame_for(self, call: Call, tick: int) -> bytes:
        """What ``call`` hears in this tick: every other member, mixed."""
        if tick != self._tick:
            members = self.members
            if self.heard_only_by:
                frames = mix_heard([m.inbound_frame or _SILENT for m in members],
                                   self._hearing())
            else:
                frames = mix_minus([m.inbound_frame or _SILENT for m in members],
                                   [m not in self.muted for m in members])
            self._out = dict(zip(members, frames, strict=True))
            self._tick = tick
        return self._out.get(call, _SILENT)

    def _hearing(self) -> npt.NDArray[np.int32]:
        """``[i, j]`` = 1 when member ``i`` hears member ``j``; kept until members change."""
        if self._hears is None:
            members, muted, only = self.members, self.muted, self.heard_only_by
            self._hears = np.array(
                [[int(i is not j and j not in muted and (j not in only or i in only[j]))
                  for j in members] for i in members], dtype=np.int32).reshape(
                len(members), len(members))
        return self._hears

    def __len__(self) -> int:
        return len(self.members)


_SILENT = bytes(320)
