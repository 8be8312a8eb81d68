"""Bridges: 2 to N calls that hear each other, mixed by the engine itself.

The engine mixes instead of asking a switch to, so recording, listen-in and conferences
work the same on every kind of line. Each tick a bridge takes one frame of each member's
voice and gives each member everyone else's voice (``mix_minus``), once per tick however
many members there are. A member can be muted (it hears but is not heard: silent
listen-in), or heard only by some members (``heard_by``: a supervisor whispering to the
agent, whom the caller must not hear); only a bridge with such a member pays for the
per-party rule (:func:`~appliance.media.mixer.mix_heard`).

A frame from the far end's clock (AudioSocket) now and then misses its tick and comes with
the next one. Each member's voice therefore passes a small jitter buffer (:class:`_Playout`):
the missing frame is covered by the last one, fading out, and the late frame is heard a
frame later instead of being lost; the member is then a frame behind until a pause (a frame
too quiet to miss) is dropped to catch up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from appliance.media.frame import SAMPLES_PER_FRAME
from appliance.media.mixer import mix_heard, mix_minus
from appliance.media.vad import frame_levels_dbfs

if TYPE_CHECKING:
    from appliance.calls.call import Call

#: how many frames a member's voice may run behind in the mix; past this the oldest go,
#: pause or not (a far end that stalled, then sent its backlog at once)
MAX_BEHIND_FRAMES = 3
#: while behind, a frame below this level (a pause, line noise) is dropped to catch up;
#: nobody hears 20 ms less of a pause
CATCH_UP_BELOW_DBFS = -45.0


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
        self._playout: dict[Call, _Playout] = {}

    def add(self, call: Call, *, muted: bool = False,
            heard_by: Iterable[Call] | None = None) -> None:
        """``call`` joins (or changes how it is heard): ``muted``, nobody hears it;
        ``heard_by``, only those members hear it; neither, everyone does. A call that
        has ended does not join (its hang-up raced the bridging, which goes on for the
        others): nothing would ever take it out, and they would hear its last frame over
        and over."""
        if call.ended:
            return
        if call.bridge is not None and call.bridge is not self:
            call.bridge.remove(call)
        if call not in self.members:
            self.members.append(call)
            self._playout[call] = _Playout()
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
        self._playout.pop(call, None)
        if call.bridge is self:
            call.bridge = None

    def frame_for(self, call: Call, tick: int) -> bytes:
        """What ``call`` hears in this tick: every other member, mixed."""
        if tick != self._tick:
            members = self.members
            playout = self._playout
            voices = [playout[m].take(m, tick) for m in members]
            if self.heard_only_by:
                frames = mix_heard(voices, self._hearing())
            else:
                frames = mix_minus(voices, [m not in self.muted for m in members])
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


class _Playout:
    """One member's voice on its way into the mix: its frames in order, one a tick."""

    __slots__ = ("behind", "last", "missing")

    def __init__(self) -> None:
        self.behind: deque[bytes] = deque()  # frames come but not yet mixed
        self.last = _SILENT  # the frame mixed last
        self.missing = 0  # ticks in a row with nothing to mix

    def take(self, member: Call, tick: int) -> bytes:
        """The member's frame for this tick's mix."""
        behind = self.behind
        if member.late_tick != tick:
            frame = member.inbound_frame or _SILENT
            if not behind and not member.catch_up:  # nearly always: in step
                self.last = frame
                self.missing = 0
                return frame
            behind.append(frame)
            behind.extend(member.catch_up)  # frames that came together after a late one
        if not behind:
            # Its frame is late: the last one fading out covers the gap, where silence
            # would click; a longer gap is silence.
            self.missing += 1
            return _fade_out(self.last) if self.missing == 1 else _SILENT
        frame = behind.popleft()
        while behind and (len(behind) > MAX_BEHIND_FRAMES or _quiet(frame)):
            frame = behind.popleft()
        self.last = frame
        self.missing = 0
        return frame


def _quiet(frame: bytes) -> bool:
    block = np.frombuffer(frame, dtype="<i2").reshape(1, SAMPLES_PER_FRAME)
    return bool(frame_levels_dbfs(block)[0] < CATCH_UP_BELOW_DBFS)


def _fade_out(frame: bytes) -> bytes:
    samples = np.frombuffer(frame, dtype="<i2") * _FADE
    return samples.astype("<i2").tobytes()


_SILENT = bytes(320)
_FADE = np.linspace(1.0, 0.0, SAMPLES_PER_FRAME, endpoint=False)
