"""The bridge's "who hears whom": everyone hears everyone by default, a muted member (silent
listen-in) hears all and is heard by none, and a member heard only by some (a supervisor's
whisper) reaches exactly those; changing the rule takes effect in the next tick."""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.calls.bridge import Bridge
from appliance.media.mixer import mix_heard, mix_minus


class Party:
    """A stand-in for a Call: the bridge reads only ``inbound_frame`` and sets ``bridge``."""

    def __init__(self, level: int) -> None:
        self.inbound_frame = np.full(160, level, "<i2").tobytes()
        self.bridge: Bridge | None = None


def party(level: int) -> Any:
    return Party(level)


def heard(bridge: Bridge, call: Any, tick: int) -> int:
    return int(np.frombuffer(bridge.frame_for(call, tick), "<i2")[0])


def test_listen_in_and_whisper_reach_only_whom_they_should() -> None:
    caller, agent, supervisor = party(100), party(20), party(3)
    bridge = Bridge("talk")
    bridge.add(caller)
    bridge.add(agent)
    assert (heard(bridge, caller, 1), heard(bridge, agent, 1)) == (20, 100)
    bridge.add(supervisor, muted=True)  # listen
    assert (heard(bridge, caller, 2), heard(bridge, agent, 2),
            heard(bridge, supervisor, 2)) == (20, 100, 120)
    bridge.add(supervisor, heard_by=[agent])  # whisper to the agent
    assert (heard(bridge, caller, 3), heard(bridge, agent, 3),
            heard(bridge, supervisor, 3)) == (20, 103, 120)
    bridge.add(supervisor, muted=True)  # back to listening
    assert heard(bridge, agent, 4) == 100 and not bridge.heard_only_by
    bridge.add(supervisor, heard_by=[agent])
    bridge.remove(agent)  # the agent leaves: the whisper reaches nobody
    assert (heard(bridge, caller, 5), heard(bridge, supervisor, 5)) == (0, 100)
    bridge.remove(supervisor)
    assert not bridge.heard_only_by and supervisor.bridge is None


def test_the_hearing_matrix_mix_equals_mix_minus_when_everyone_hears_everyone() -> None:
    rng = np.random.default_rng(7)
    frames = [rng.integers(-20000, 20000, 160, dtype=np.int16).astype("<i2").tobytes()
              for _ in range(4)]
    everyone = np.ones((4, 4), dtype=np.int32) - np.eye(4, dtype=np.int32)
    assert mix_heard(frames, everyone) == mix_minus(frames)
