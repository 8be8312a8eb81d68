"""The headset driver on PortAudio's file-backed ALSA device: exact bytes both ways.

The device has no clock of its own, so the test plays the engine's tick by hand on a
manual clock: every frame the engine writes must land in the played file exactly, after
the driver's two blocks of start-up silence, and the microphone must hand on the captured
file exactly, in order, with nothing dropped or counted as a fault.
"""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from click.testing import CliRunner

from appliance.calls.call import Call, CallState
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.cli import main
from appliance.media.frame import FRAME_BYTES, SILENCE
from appliance.media.prompts import Prompt
from appliance.media.tones import ToneSource
from drivers.base import CAUSE_NORMAL, EventKind, LineError, LineState
from drivers.sound import (
    Headset,
    HeadsetConfig,
    SoundDeviceError,
    SoundDriver,
    SoundLine,
    choose_device,
    list_devices,
)
from drivers.sound.driver import RING_LEVEL_DBM0, RING_TONE
from drivers.sound.headset import PREFILL_BLOCKS, open_portaudio
from tests.drivers.sound.conftest import FileDevice

TICKS = 40


class TickClock:
    """20 ms per tick, advanced by the test: the card is never starved on this clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pattern(frames: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    # No zero samples, so a frame can never be mistaken for the start-up silence.
    return rng.integers(1, 30000, frames * 160).astype("<i2").tobytes()


def test_lists_the_file_device_and_chooses_it_by_name_or_index(file_device: FileDevice) -> None:
    pa = open_portaudio()
    try:
        devices = list_devices(pa)
        default = [d for d in devices if d.name == "default"]
        assert len(default) == 1 and default[0].inputs >= 1 and default[0].outputs >= 1
        index = default[0].index
        assert choose_device(pa, "default", need="input") == default[0]
        assert choose_device(pa, index, need="output") == default[0]
        assert choose_device(pa, None, need="output") == default[0]
        with pytest.raises(SoundDeviceError,
                           match=r"no device named 'USB Headset'; devices: .*default"):
            choose_device(pa, "USB Headset", need="input")
        with pytest.raises(SoundDeviceError, match="no device with index 99"):
            choose_device(pa, 99, need="input")
    finally:
        pa.terminate()


def test_frames_land_exactly_in_the_file_and_the_infile_comes_back(
    file_device: FileDevice,
) -> None:
    captured = _pattern(4 * TICKS + 50, seed=1)  # more than the driver can read in TICKS
    file_device.infile.write_bytes(captured)
    played = [_pattern(1, seed=100 + i) for i in range(TICKS)]
    clock = TickClock()
    driver = SoundDriver("8001", HeadsetConfig(device="default", rate=8000), clock=clock)

    async def run() -> bytes:
        await driver.start(lambda line: None)
        line = await driver.originate("8001")
        assert isinstance(line, SoundLine) and line.state is LineState.DIALING
        driver.answer()
        assert line.state is LineState.ANSWERED
        assert [e.kind for e in line.events] == [EventKind.ANSWERED]
        heard = bytearray()
        for tick in range(TICKS):
            clock.now = tick * 0.02
            driver.before_tick(tick)
            while line.inbound:  # the engine takes every queued frame each tick
                heard += line.inbound.popleft()
            line.write_frame(played[tick])
            driver.after_tick(tick)
        line.hangup(CAUSE_NORMAL)
        assert driver.line is None
        await driver.stop()
        return bytes(heard)

    heard = asyncio.run(run())
    assert file_device.outfile.read_bytes() == SILENCE * PREFILL_BLOCKS + b"".join(played)
    assert len(heard) >= TICKS * FRAME_BYTES
    assert heard == captured[: len(heard)]
    stats = driver.stats
    assert (stats.underruns, stats.overruns_in, stats.overruns_out) == (0, 0, 0)
    assert stats.frames_out == TICKS


def test_the_seat_rings_in_the_earpiece_until_answered(file_device: FileDevice) -> None:
    file_device.infile.write_bytes(_pattern(400, seed=2))
    clock = TickClock()
    driver = SoundDriver("8001", HeadsetConfig(rate=8000), clock=clock)

    async def run() -> None:
        await driver.start(lambda line: None)
        line = await driver.originate("8001", caller="95519")
        assert (line.callee, line.caller) == ("8001", "95519")
        for tick in range(50):  # 1 s of ringing
            clock.now = tick * 0.02
            driver.before_tick(tick)
            assert len(line.inbound) == 1  # ringback for the engine, not the microphone
            line.inbound.clear()
            line.write_frame(_pattern(1, seed=3))  # whatever the engine says is not heard yet
            driver.after_tick(tick)
        # A second call to the busy seat ends at once, as busy.
        second = await driver.originate("8001")
        assert second.events[0].kind is EventKind.HANGUP and second.events[0].cause == "busy"
        with pytest.raises(LineError, match="no seat '8002' here"):
            await driver.originate("8002")
        await driver.stop()
        assert line.ended and line.end_cause == "shutdown"

    asyncio.run(run())
    earpiece = np.frombuffer(file_device.outfile.read_bytes(), "<i2")[PREFILL_BLOCKS * 160 :]
    assert len(earpiece) == 50 * 160
    # Exactly the China ringback at the ring level: 450 Hz, 1 s on (the whole second here).
    ring = ToneSource(RING_TONE, RING_LEVEL_DBM0)
    assert earpiece.tobytes() == b"".join(ring.next_frame() for _ in range(50))
    spectrum = np.abs(np.fft.rfft(earpiece))
    assert abs(np.argmax(spectrum) * 8000 / len(earpiece) - 450) < 2

def test_a_rate_that_does_not_make_20ms_blocks_is_refused(file_device: FileDevice) -> None:
    with pytest.raises(SoundDeviceError, match="11025 Hz does not divide into 20 ms blocks"):
        Headset(rate=11025)


async def _ticks(engine: Engine, n: int) -> None:
    target = engine.tick_no + n
    while engine.tick_no < target:
        await asyncio.sleep(0)


def test_through_the_engine_the_seat_rings_is_answered_and_hears_the_flow(
    file_device: FileDevice,
) -> None:
    """engine.originate to the seat, on the manual clock: ringing until the agent answers,
    then exactly the flow's audio in the earpiece, and the agent's hang-up ends the call."""
    file_device.infile.write_bytes(_pattern(4 * 400, seed=4))
    greeting = _pattern(10, seed=5)
    clock = ManualClock()
    driver = SoundDriver("8001", HeadsetConfig(rate=8000), clock=clock.now)
    played_at: list[int] = []

    async def seat_flow(call: Call) -> None:
        await call.wait_answered()
        played_at.append(engine.tick_no)
        await call.play(Prompt.from_samples("greeting", np.frombuffer(greeting, "<i2")),
                        interruptible=False)
        await call.wait_ended()

    async def idle(call: Call) -> None:
        return None

    engine = Engine(clock=clock, drivers=[driver], flow=idle)

    async def run() -> Call:
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        call = await engine.originate(driver, "8001", flow=seat_flow, ring_timeout=30)
        await _ticks(engine, 100)  # 2 s of ringing: ringback keeps the analysis waiting
        assert call.state is CallState.DIALING
        driver.answer()
        await _ticks(engine, 30)
        assert call.state is CallState.ACTIVE
        driver.hang_up()
        await asyncio.wait_for(call.wait_ended(), 5)
        assert driver.line is None
        engine.stop()
        await task
        return call

    call = asyncio.run(run())
    assert call.end_cause == "remote"
    earpiece = file_device.outfile.read_bytes()
    ring = ToneSource(RING_TONE, RING_LEVEL_DBM0)
    ringing = b"".join(ring.next_frame() for _ in range(100))
    # Start-up silence, then (idle ticks before the call in silence) the ring, then the
    # flow's greeting exactly as played, then silence.
    start = earpiece.index(ringing[:FRAME_BYTES])
    assert earpiece[:start] == bytes(start)
    assert earpiece[start : start + len(ringing)] == ringing
    assert greeting in earpiece
    after = earpiece.index(greeting) + len(greeting)
    assert not any(earpiece[after:])


def test_an_unanswered_seat_ends_as_no_answer(file_device: FileDevice) -> None:
    file_device.infile.write_bytes(_pattern(4 * 400, seed=6))
    clock = ManualClock()
    driver = SoundDriver("8001", HeadsetConfig(rate=8000), clock=clock.now)

    async def seat_flow(call: Call) -> None:
        await call.wait_answered()

    async def run() -> Call:
        engine = Engine(clock=clock, drivers=[driver], flow=seat_flow)
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        call = await engine.originate(driver, "8001", ring_timeout=4)
        await asyncio.wait_for(call.wait_ended(), 5)
        ticks = engine.tick_no
        engine.stop()
        await task
        assert 4 * 50 <= ticks <= 5 * 50
        return call

    call = asyncio.run(run())
    assert call.end_cause == "no-answer"
    assert driver.line is None and call.line.end_cause == "no-answer"


def test_the_cli_lists_the_devices(file_device: FileDevice) -> None:
    result = CliRunner().invoke(main, ["sound", "devices"])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.output.splitlines() if "'default'" in ln]
    assert re.fullmatch(r"\d+: 'default' \(ALSA, \d+ in / \d+ out, \d+ Hz\)", line)
