"""The headset driver on PortAudio's file-backed ALSA device: exact bytes both ways.

The device has no clock of its own, so the test plays the engine's tick by hand on a
manual clock: every frame the engine writes must land in the played file exactly, after
the driver's two blocks of start-up silence, and the microphone must hand on the captured
file exactly, in order, with nothing dropped or counted as a fault.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance.media.frame import FRAME_BYTES, SILENCE
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
from drivers.sound.headset import PREFILL_BLOCKS, _open_portaudio
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
    pa = _open_portaudio()
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
