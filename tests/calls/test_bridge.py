"""The bridge's "who hears whom": everyone hears everyone by default, a muted member (silent
listen-in) hears all and is heard by none, and a member heard only by some (a supervisor's
whisper) reaches exactly those; changing the rule takes effect in the next tick."""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.calls.bridge import Bridge
from appliance.media.mixer import mix_heard, mix_minus


class Party:
    """A stand-in for a Call: the bridge reads its inbound frames and sets ``bridge``."""

    def __init__(self, level: int) -> None:
        self.inbound_frame = np.full(160, level, "<i2").tobytes()
        self.catch_up: list[bytes] = []
        self.late_tick = -1
        self.bridge: Bridge | None = None
        self.ended = False


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


def voice(seed: int, rms: float) -> bytes:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, rms, 160), -32768, 32767).astype("<i2").tobytes()


def talk(bridge: Bridge, speaker: Party, listener: Party, arrivals: list[list[bytes]]
         ) -> list[bytes]:
    """What ``listener`` hears, tick by tick, when ``speaker``'s frames come as
    ``arrivals[tick]`` (none: late; more than one: the late ones with this tick's)."""
    heard = []
    for tick, came in enumerate(arrivals):
        if came:
            speaker.inbound_frame, speaker.catch_up = came[0], came[1:]
        else:
            speaker.inbound_frame, speaker.catch_up = bytes(320), []
            speaker.late_tick = tick
        heard.append(bridge.frame_for(listener, tick))
    return heard


def test_a_late_frame_is_heard_late_not_lost_and_a_pause_takes_the_delay_back() -> None:
    caller, agent = Party(0), Party(0)
    bridge = Bridge("talk")
    bridge.add(caller)
    bridge.add(agent)
    loud = [voice(i, 3000) for i in range(13)]  # about -21 dBFS: a voice
    quiet = [voice(100 + i, 30) for i in range(13)]  # about -61 dBFS: a pause, line noise
    said = loud[:6] + quiet[6:10] + loud[10:]
    arrivals = [[f] for f in said]
    arrivals[3], arrivals[4] = [], [said[3], said[4]]  # frame 3 misses its tick
    heard = talk(bridge, caller, agent, arrivals)
    # The gap is covered by the frame before it, fading to nothing; then frame 3 comes a
    # frame late and every word after it too, until the pause: one frame of it is dropped
    # and the caller is in step again.
    faded = np.frombuffer(heard[3], "<i2").astype(int)
    before = np.frombuffer(said[2], "<i2").astype(int)
    assert np.all(np.abs(faded) <= np.abs(before)) and np.any(faded != 0)
    assert abs(int(faded[0]) - int(before[0])) <= 1 and abs(int(faded[-1])) < 50
    assert heard[:3] + heard[4:] == said[:3] + said[3:6] + said[7:]
    assert heard[10:] == said[10:]  # in step


def test_a_far_end_that_stalls_is_kept_at_most_a_few_frames_behind() -> None:
    caller, agent = Party(0), Party(0)
    bridge = Bridge("talk")
    bridge.add(caller)
    bridge.add(agent)
    said = [voice(i, 3000) for i in range(20)]  # speech throughout: no pause to drop
    arrivals: list[list[bytes]] = [[f] for f in said]
    for tick in range(3, 8):
        arrivals[tick] = []
    arrivals[8] = said[3:9]  # a 100 ms stall, then the backlog at once
    heard = talk(bridge, caller, agent, arrivals)
    assert heard[4:8] == [bytes(320)] * 4  # after the fading frame, silence
    # The two oldest frames of the backlog go; the rest are heard three frames late.
    assert heard[8:] == said[5:17]
    assert heard[:3] == said[:3]
