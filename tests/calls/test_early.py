"""The early pass: on lines clocked by the far end (AudioSocket), the frames that have come
before the tick are searched for keys ahead of it, and a key's answer leaves then; frames
that come later are the tick's, as before. Nothing is lost or doubled on the way: every
line still gets one frame per tick, and the recording holds every inbound frame in order.
Run on the manual clock with a far-end driver whose frames come either before the early
pass or only at the tick."""

from __future__ import annotations

import asyncio
import math
import wave
from pathlib import Path

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.media.frame import FRAME_BYTES
from appliance.media.prompts import PromptLibrary
from appliance.media.tones import dtmf
from drivers.base import AcceptLine, Direction, Driver, Line, LineState

TICK = 0.02
LEAD = 0.004  # the early pass, this long before each tick
KEY_TICK = 30  # the first tone frame is the inbound frame of this tick


def frames_of(samples: np.ndarray) -> list[bytes]:
    pcm = samples.astype("<i2").tobytes()
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


class FarEndLine(Line):
    """Keeps every frame the engine writes, with the clock time it was written."""

    def __init__(self, line_id: str, clock: ManualClock) -> None:
        super().__init__(line_id, Direction.INBOUND, caller=line_id, callee="95500")
        self.clock = clock
        self.writes: list[tuple[float, bytes]] = []

    def write_frame(self, frame: bytes) -> None:
        self.writes.append((self.clock.now(), frame))

    def answer(self) -> None:
        self.state = LineState.ANSWERED

    def hangup(self, cause: str = "normal") -> None:
        self.state = LineState.ENDED


class FarEnd(Driver):
    """Lines whose frame for tick n comes either before the early pass of tick n (pushed
    after tick n - 1) or only at tick n itself (pushed as it starts)."""

    name = "far-end"
    far_end_clocked = True

    def __init__(self, clock: ManualClock, audio: dict[str, list[bytes]], late: set[str],
                 gap: dict[str, int]) -> None:
        self.lines = {name: FarEndLine(name, clock) for name in audio}
        self.audio = audio
        self.late = late  # lines whose frames come only at the tick
        self.gap = gap  # line -> tick whose frame comes a tick late, with the next one
        self.sent = dict.fromkeys(audio, 0)

    async def start(self, accept: AcceptLine) -> None:
        for line in self.lines.values():
            accept(line)

    async def stop(self) -> None:
        return None

    def _push(self, tick: int, late: bool) -> None:
        for name, line in self.lines.items():
            if (name in self.late) != late or tick < 1:
                continue
            if self.gap.get(name) == tick:
                continue
            count = 2 if self.gap.get(name) == tick - 1 else 1
            for _ in range(count):
                if self.sent[name] < len(self.audio[name]):
                    line.push_frame(self.audio[name][self.sent[name]])
                    self.sent[name] += 1

    def before_tick(self, tick: int) -> None:
        self._push(tick, late=True)

    def after_tick(self, tick: int) -> None:
        self._push(tick + 1, late=False)


async def answer_keys(call: Call) -> None:
    await call.answer()
    while True:
        key = await call.play("welcome")
        if key is not None:
            call.flush_keys()
            await call.play(f"digit_{key}", interruptible=False)


def audio_with_key(digit: str, seed: int) -> list[bytes]:
    """Quiet noise (no key in it), then an 80 ms key whose first frame is KEY_TICK's."""
    rng = np.random.default_rng(seed)
    before = frames_of(rng.normal(0, 300, (KEY_TICK - 1) * 160))
    tone = frames_of(dtmf(digit, 80, -7.0))
    after = frames_of(rng.normal(0, 300, 40 * 160))
    return before + tone + after


def left_channel(recordings: Path) -> list[bytes]:
    """The caller's side of each recording made, as frames."""
    sides = []
    for path in sorted(recordings.rglob("*.wav")):
        with wave.open(str(path)) as w:
            data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
        sides.append(data[:, 0].astype("<i2").tobytes())
    return sides


def run(tmp_path: Path, audio: dict[str, list[bytes]], late: set[str],
        gap: dict[str, int]) -> FarEnd:
    async def main() -> FarEnd:
        clock = ManualClock(start=100.0)
        driver = FarEnd(clock, audio, late, gap)
        engine = Engine(clock=clock, drivers=[driver], flow=answer_keys,
                        prompts=PromptLibrary(), recordings=tmp_path)
        engine.early_lead = LEAD
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        while engine.tick_no < KEY_TICK + 60:
            await asyncio.sleep(0)
        engine.stop()
        await task
        return driver

    return asyncio.run(main())


def tick_of(t: float) -> int:
    """The tick a write belongs to (an early write is a fraction of a tick ahead)."""
    return math.ceil(round((t - 100.0) / TICK, 6))


def test_a_key_in_a_frame_that_came_early_is_answered_before_the_tick(tmp_path: Path) -> None:
    audio = {"early": audio_with_key("5", 1), "late": audio_with_key("7", 2),
             "gap": audio_with_key("3", 3)}
    driver = run(tmp_path, audio, late={"late"}, gap={"gap": KEY_TICK - 5})
    prompts = PromptLibrary()

    def answer(name: str, digit: str) -> tuple[float, int]:
        writes = driver.lines[name].writes
        frames = [f for _, f in writes]
        reply = list(prompts.get(f"digit_{digit}").frames)
        at = next(i for i in range(len(frames)) if frames[i : i + len(reply)] == reply)
        # One frame a tick, every tick, early or not: nothing doubled, nothing skipped.
        ticks = [tick_of(t) for t, _ in writes]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), name
        return writes[at][0], ticks[at]

    early_t, early_tick = answer("early", "5")
    late_t, late_tick = answer("late", "7")
    # Both keys are declared in their second tone frame, so answered in the same tick; the
    # one whose frame came before the early pass has its answer out LEAD ahead of the tick.
    assert early_tick == late_tick == KEY_TICK + 1
    assert abs(late_t - (100.0 + late_tick * TICK)) < 1e-9
    assert abs(early_t - (late_t - LEAD)) < 1e-9
    # A frame that came a tick late is caught up; the key after it is still answered.
    answer("gap", "3")

    # The recordings hold every inbound frame in order (a silent frame where one was late).
    sides = left_channel(tmp_path)
    assert len(sides) == 3
    gap = audio["gap"]
    expected = [b"".join(audio["early"]), b"".join(audio["late"]),
                b"".join([*gap[: KEY_TICK - 6], bytes(FRAME_BYTES), *gap[KEY_TICK - 6 :]])]
    for want in expected:
        assert sum(want in side for side in sides) == 1


def run_bridged(tmp_path: Path, audio: dict[str, list[bytes]], gap: dict[str, int],
                until: int) -> tuple[FarEnd, dict[str, Call]]:
    """Lines "a" and "b" on the far end's clock, bridged once both are answered, run to
    tick ``until``; the driver (what each line was sent) and the calls by line."""
    calls: dict[str, Call] = {}

    async def bridged(call: Call) -> None:
        await call.answer()
        calls[call.caller] = call
        if len(calls) == 2:
            call.engine.create_bridge(*calls.values())
        await call.sleep(5)

    async def main() -> FarEnd:
        clock = ManualClock(start=100.0)
        driver = FarEnd(clock, audio, late=set(), gap=gap)
        engine = Engine(clock=clock, drivers=[driver], flow=bridged, prompts=PromptLibrary(),
                        recordings=tmp_path)
        engine.early_lead = LEAD
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        while engine.tick_no < until:
            await asyncio.sleep(0)
        engine.stop()
        await task
        return driver

    return asyncio.run(main()), calls


def test_a_line_in_a_bridge_keys_without_an_early_frame(tmp_path: Path) -> None:
    # Its frame mixes the other members' frames of the tick, which are not all in at the
    # early pass: it waits for the tick, and the other side hears the key in step.
    audio = {"a": audio_with_key("9", 4), "b": frames_of(np.zeros(100 * 160))}
    driver, calls = run_bridged(tmp_path, audio, gap={}, until=KEY_TICK + 20)
    assert calls["a"].keys == "9"
    for line in driver.lines.values():
        assert all(abs(t - (100.0 + tick_of(t) * TICK)) < 1e-9 for t, _ in line.writes)
    tone = b"".join(audio_with_key("9", 4)[KEY_TICK - 1 : KEY_TICK + 3])
    assert tone in b"".join(f for _, f in driver.lines["b"].writes)


def test_a_bridged_frame_that_comes_a_tick_late_is_heard_not_lost(tmp_path: Path) -> None:
    # The far end's frame misses its tick and comes with the next one: the other member
    # hears it a frame late, after a fading copy of the frame before, and no frame is lost.
    rng = np.random.default_rng(9)
    talk = frames_of(rng.normal(0, 3000, 100 * 160))  # a voice, no pause in it
    gap = 40
    audio = {"a": talk, "b": frames_of(np.zeros(100 * 160))}
    driver, _ = run_bridged(tmp_path, audio, gap={"a": gap}, until=gap + 20)
    heard = [f for _, f in driver.lines["b"].writes]
    late = gap - 1  # the far end's first frame is tick 1's
    start = heard.index(talk[late - 10])
    got = heard[start : start + 30]
    assert got[:10] == talk[late - 10 : late]  # in step before the gap
    filler = np.frombuffer(got[10], "<i2").astype(int)
    assert np.any(filler != 0)
    assert np.all(np.abs(filler) <= np.abs(np.frombuffer(talk[late - 1], "<i2").astype(int)))
    assert got[11:] == talk[late : late + 19]  # every frame, a frame late
