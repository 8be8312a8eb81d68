"""The headset driver in real time, through the engine, on a PulseAudio null-sink loopback.

What the driver plays into the sink comes back on the sink's monitor, which is the
driver's microphone, so one seat call carries the engine's own audio round the loop: a
test signal comes back byte for byte, DTMF keyed by the flow is detected by the engine's
DTMF detector, a 48 kHz device keeps a 1 kHz tone at 1 kHz, a stalled engine shows up in
the underrun and overrun counters, and killing the sound server ends the call as
``line-dropped`` (and the driver opens the device again once a server is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from appliance.calls.call import Call, CallState
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE
from appliance.media.prompts import Prompt
from appliance.media.tones import dtmf_sequence, tone
from appliance.media.wavio import read_slin
from drivers.base import CAUSE_LINE_DROPPED
from drivers.sound import HeadsetConfig, SoundDeviceError, SoundDriver
from tests.drivers.sound.conftest import PulseServer

SEAT = "8001"
TIMEOUT_S = 8.0  # every wait in these tests; nothing may hang past it


async def _idle(call: Call) -> None:
    return None


@contextlib.asynccontextmanager
async def running(driver: SoundDriver, recordings: Path | None = None
                  ) -> AsyncIterator[Engine]:
    """The real engine on the real 20 ms clock with only the headset seat."""
    engine = Engine(clock=MonotonicClock(), drivers=[driver], flow=_idle,
                    recordings=recordings)
    task = asyncio.create_task(engine.run())
    await asyncio.wait_for(engine.started.wait(), TIMEOUT_S)
    try:
        yield engine
    finally:
        engine.stop()
        await asyncio.wait_for(task, TIMEOUT_S)


async def answered_call(engine: Engine, driver: SoundDriver,
                        flow: Callable[[Call], Awaitable[None]]) -> Call:
    """Ring the seat, let it ring briefly, answer as the agent would; the flow runs."""
    async def seat_flow(call: Call) -> None:
        await call.wait_answered()
        await flow(call)

    call = await engine.originate(driver, SEAT, flow=seat_flow, ring_timeout=10)
    await asyncio.sleep(0.3)
    assert call.state is CallState.DIALING  # still ringing: only the agent answers
    driver.answer()
    return call


async def _talk(call: Call) -> None:
    await call.silence(30)  # a call that lasts until something else ends it


async def _reopened(driver: SoundDriver) -> None:
    """Wait until the driver has opened its device again by itself."""
    for _ in range(int(TIMEOUT_S / 0.1)):
        if driver.available:
            break
        await asyncio.sleep(0.1)
    assert driver.available and driver.stats.reopens == 1


def _signal(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-16000, 16000, round(SAMPLE_RATE * seconds)).astype(np.int16)


def _padded(x: np.ndarray) -> Prompt:
    # The first milliseconds of a stream and its last ~60 ms at a stop are unreliable:
    # silence around the signal, and the test searches for it.
    pad = np.zeros(800, np.int16)
    return Prompt.from_samples("signal", np.concatenate((pad, x, np.zeros(2000, np.int16))))


def _inbound_recording(recordings: Path) -> np.ndarray:
    """The caller side (left channel) of the one call's stereo recording."""
    (path,) = list(recordings.rglob("*.wav"))
    return read_slin(path, channels=2)[0::2]


def _inbound_audio(recordings: Path) -> bytes:
    """The microphone's audio as the engine took it: the recording without its all-zero
    frames. The engine records a frame of silence for a tick whose frame had not arrived
    yet and then the late frame itself, and the sound card's clock is not the tick's."""
    frames = _inbound_recording(recordings).astype("<i2").tobytes()
    return b"".join(
        f for i in range(0, len(frames), FRAME_BYTES) if any(f := frames[i : i + FRAME_BYTES])
    )


def _tone_seconds(x: np.ndarray, rate: int, hz: float, amplitude: float) -> float:
    """How many seconds of a sine of ``amplitude`` at ``hz`` ± 20 Hz the signal holds."""
    spectrum = np.fft.rfft(x.astype(np.float64))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = np.fft.irfft(np.where(np.abs(freqs - hz) < 20, spectrum, 0), len(x))
    return float(np.sum(band**2) / (amplitude**2 / 2) / rate)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    x = x.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_a_device_without_a_microphone_is_refused(pulse: PulseServer) -> None:
    # "speaker" can only play (an ALSA asym device with no capture side).
    driver = SoundDriver(SEAT, HeadsetConfig(device="speaker"))
    with pytest.raises(SoundDeviceError, match=r"'speaker'.* has 0 input channel\(s\); a headset "
                                               r"seat needs a microphone"):
        asyncio.run(driver.start(lambda line: None))


def test_audio_comes_back_byte_for_byte_and_dtmf_is_detected(
    pulse: PulseServer, tmp_path: Path
) -> None:
    signal = _signal(0.4, seed=5)
    keys = "15#"
    driver = SoundDriver(SEAT, HeadsetConfig(rate=8000))

    async def flow(call: Call) -> None:
        await call.play(_padded(signal), interruptible=False)
        await call.play(Prompt.from_samples("keys", dtmf_sequence(keys, 100, 100)),
                        interruptible=False)
        await call.silence(0.3)
        await call.hangup()

    async def run() -> Call:
        async with running(driver, tmp_path) as engine:
            call = await answered_call(engine, driver, flow)
            await asyncio.wait_for(call.wait_ended(), TIMEOUT_S)
            await engine.settle()
            return call

    call = asyncio.run(run())
    assert call.end_cause == "normal"
    # The microphone's reserve frame covers the card's blocks arriving just after a tick
    # (without it about one tick in ten found no frame); the first tick after the answer
    # has none yet.
    assert call.frames_late <= 3
    # The engine's DTMF detector heard the keys the flow played, after the round trip.
    assert call.keys == keys
    # What the engine played into the sink is on the monitor, and came back as the
    # microphone, exactly.
    assert signal.tobytes() in pulse.captured("seat.monitor")
    assert signal.tobytes() in _inbound_audio(tmp_path)
    assert driver.stats.frames_in > 0 and driver.stats.losses == 0


def test_a_48khz_device_keeps_a_1khz_tone_at_1khz(pulse: PulseServer, tmp_path: Path) -> None:
    driver = SoundDriver(SEAT, HeadsetConfig(input_device="seat48mon", output_device="seat48",
                                             rate=48000))

    played = tone(1000.0, 1000, -10.0)

    async def flow(call: Call) -> None:
        await call.play(_padded(played), interruptible=False)
        await call.silence(0.5)  # the loop's delay grows when the machine is busy
        await call.hangup()

    async def run() -> None:
        async with running(driver, tmp_path) as engine:
            assert driver._headset is not None and driver._headset.rate == 48000
            call = await answered_call(engine, driver, flow)
            await asyncio.wait_for(call.wait_ended(), TIMEOUT_S)
            await engine.settle()

    asyncio.run(run())
    # On the 48 kHz sink: the engine's 8 kHz tone was resampled up, not sped up 6 times,
    # and all of its second is there.
    amplitude = float(np.max(np.abs(played)))
    sink = np.frombuffer(pulse.captured("seat48.monitor"), "<i2")
    assert abs(_peak_hz(sink, 48000) - 1000.0) < 2
    assert 0.95 < _tone_seconds(sink, 48000, 1000.0, amplitude) < 1.05
    # And back at 8 kHz in the engine: still 1 kHz, at the level and length it was played.
    heard = _inbound_recording(tmp_path)
    assert abs(_peak_hz(heard, 8000) - 1000.0) < 2
    # Less only by the microphone blocks dropped if the engine fell behind (a busy machine).
    expected = 1.0 - driver.stats.overruns_in * 0.02
    seconds = _tone_seconds(heard, 8000, 1000.0, amplitude)
    assert expected - 0.05 < seconds < expected + 0.05, (seconds, driver.stats)


def test_a_stalled_engine_counts_an_underrun_and_an_overrun(pulse: PulseServer) -> None:
    driver = SoundDriver(SEAT, HeadsetConfig(rate=8000))

    async def flow(call: Call) -> None:
        await call.play(Prompt.from_samples("tone", tone(700.0, 400)), interruptible=False)
        before = driver.stats.frames_in
        time.sleep(0.3)  # the stall is the point: block the whole event loop
        await call.play(Prompt.from_samples("tone", tone(700.0, 400)), interruptible=False)
        assert driver.stats.frames_in > before  # the microphone kept coming afterwards
        await call.hangup()

    async def run() -> Call:
        async with running(driver) as engine:
            assert (driver.stats.underruns, driver.stats.overruns_in) == (0, 0)
            call = await answered_call(engine, driver, flow)
            await asyncio.wait_for(call.wait_ended(), TIMEOUT_S)
            return call

    call = asyncio.run(run())
    assert call.end_cause == "normal"
    # 300 ms without a tick: the earpiece's 60 ms of cushion ran dry (played as silence)
    # and the microphone blocks beyond the 80 ms backlog were dropped, oldest first.
    assert driver.stats.underruns >= 1
    assert driver.stats.overruns_in >= 1


def test_a_stalled_sound_server_overruns_the_earpiece_and_the_call_carries_on(
    pulse: PulseServer,
) -> None:
    driver = SoundDriver(SEAT, HeadsetConfig(rate=8000))

    async def run() -> Call:
        async with running(driver) as engine:
            call = await answered_call(engine, driver, _talk)
            await asyncio.sleep(0.3)
            ticks, frames_in = engine.stats.ticks, driver.stats.frames_in
            assert driver.stats.overruns_out == 0
            # The server takes no audio for 0.5 s (SIGSTOP); the test waits off the loop.
            await asyncio.get_running_loop().run_in_executor(None, pulse.pause, 0.5)
            assert engine.stats.ticks - ticks >= 20  # the engine never waited for the card
            assert driver.stats.overruns_out >= 10  # the earpiece queue dropped the oldest
            assert driver.stats.frames_in - frames_in < 10  # no microphone while stalled
            frames_in = driver.stats.frames_in
            await asyncio.sleep(0.4)
            assert driver.stats.frames_in - frames_in >= 10  # and it flows again after
            assert call.state is CallState.ACTIVE and driver.stats.losses == 0
            return call

    assert asyncio.run(run()).end_cause == "shutdown"


def test_a_sound_server_that_hangs_counts_as_a_lost_device(pulse: PulseServer) -> None:
    driver = SoundDriver(SEAT, HeadsetConfig(rate=8000), reopen_interval=0.2)

    async def run() -> Call:
        async with running(driver) as engine:
            call = await answered_call(engine, driver, _talk)
            await asyncio.sleep(0.2)
            # Stopped for longer than STALL_SECONDS: no error from PortAudio, just no audio.
            pause = asyncio.get_running_loop().run_in_executor(None, pulse.pause, 2.6)
            await asyncio.wait_for(call.wait_ended(), TIMEOUT_S)
            assert not pause.done()  # ended while the server still hung, by the watchdog
            assert call.end_cause == CAUSE_LINE_DROPPED
            assert "no audio from the microphone" in call.line.reason  # type: ignore[attr-defined]
            await pause
            await _reopened(driver)  # the server is back: so is the seat
            return call

    asyncio.run(run())
    assert driver.stats.losses == 1


def test_killing_the_sound_server_drops_the_call_and_the_seat_comes_back(
    pulse: PulseServer,
) -> None:
    driver = SoundDriver(SEAT, HeadsetConfig(rate=8000), reopen_interval=0.2)

    async def run() -> tuple[Call, Call]:
        async with running(driver) as engine:
            call = await answered_call(engine, driver, _talk)
            await asyncio.sleep(0.3)
            assert call.state is CallState.ACTIVE
            line = call.line
            pulse.kill()
            await asyncio.wait_for(call.wait_ended(), TIMEOUT_S)
            await asyncio.wait_for(engine.settle(), TIMEOUT_S)
            assert call.end_cause == CAUSE_LINE_DROPPED
            assert line.end_cause == CAUSE_LINE_DROPPED
            assert "sound: the" in line.reason and "failed" in line.reason  # type: ignore[attr-defined]
            assert not driver.available and driver.lost_reason == line.reason  # type: ignore[attr-defined]
            with pytest.raises(Exception, match="cannot ring"):
                await engine.originate(driver, SEAT)
            # The device comes back: the driver opens it again by itself.
            pulse.start()
            await _reopened(driver)
            again = await answered_call(engine, driver, _talk)
            await asyncio.sleep(0.2)
            assert again.state is CallState.ACTIVE
            frames = driver.stats.frames_in
            await asyncio.sleep(0.3)
            assert driver.stats.frames_in > frames  # the microphone flows again
            return call, again

    _, again = asyncio.run(run())
    assert again.end_cause == "shutdown"  # ended by the engine stopping, cleanly
    assert driver.stats.losses == 1
