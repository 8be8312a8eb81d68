"""A headset's audio: PortAudio streams moved one 20 ms block at a time by the engine's tick.

The engine paces every line (base.py: drivers only move bytes), so the headset does too:
each tick the driver reads the microphone blocks PortAudio has ready and writes one block
to the earpiece, both without waiting (only what ``get_read_available`` /
``get_write_available`` allow). No audio thread of our own and no PortAudio callback: a
callback stream free-runs on a device with no clock of its own (the file-backed ALSA
device the byte-exact tests use calls it ~40 000 times a second), and every byte here
moves on the loop thread, so nothing needs a lock.

The sound card's clock is not the engine's clock, so the two drift and jitter apart:
- *Overrun* (microphone): when more blocks are waiting than :data:`MAX_BACKLOG_BLOCKS`
  (the engine stalled), the oldest are dropped and counted, so the delay never grows.
- *Overrun* (earpiece): when the card takes blocks slower than the engine writes them
  (or its sound server stalls), at most :data:`MAX_OUT_BLOCKS` wait here; the oldest is
  dropped and counted.
- *Underrun* (earpiece): PyAudio only reports an underflow by closing the stream, so the
  headset keeps its own account of how much audio the card still holds, on the injected
  clock: each block written adds 20 ms, time passing drains it. When the card has room
  and the account ran dry (the engine was late), the underrun is counted and
  :data:`PREFILL_BLOCKS` of silence go out ahead of the queued audio, so the next bit of
  lateness does not starve the card again.
Any other PortAudio error (a USB headset pulled out, the sound server gone) raises
:class:`DeviceLost`; PyAudio has already closed the stream by then. So does a microphone
that gives nothing for :data:`STALL_SECONDS` (a device that hangs instead of failing).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyaudio

from appliance.media.frame import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from drivers.base import LineError
from drivers.sound.devices import DeviceInfo, SoundDeviceError, choose_device
from drivers.sound.quiet import silence_audio_libraries
from drivers.sound.resample import StreamResampler, check_rate

log = logging.getLogger("drivers.sound")

BLOCK_SECONDS = FRAME_MS / 1000
#: silence queued ahead of the first block and after an underrun: the card's cushion
#: against the engine's tick jitter (p99 lateness ~1 ms, worst seen ~20 ms under load)
PREFILL_BLOCKS = 2
#: earpiece blocks that may wait for room in the card before the oldest is dropped (the
#: prefill after an underrun and a few ticks' worth)
MAX_OUT_BLOCKS = 6
#: microphone blocks taken in one tick; older ones are dropped (the engine was late)
MAX_BACKLOG_BLOCKS = 4
#: the microphone stream's PortAudio buffer, in blocks; room for a stall longer than
#: MAX_BACKLOG_BLOCKS, so such a stall shows up as an overrun here, not a silent loss
INPUT_BUFFER_BLOCKS = 2

#: no microphone audio for this long means the device hangs without an error (some USB
#: cards do when pulled out under ALSA): it counts as lost
STALL_SECONDS = 2.0

Clock = Callable[[], float]


class DeviceLost(LineError):
    """The sound device stopped working (unplugged, sound server gone); says which and why."""


@dataclass
class HeadsetStats:
    """Counters kept across re-opens of the device, for the status page and tests."""

    frames_in: int = 0  # microphone frames handed on at 8 kHz
    frames_out: int = 0  # earpiece frames written (silence included)
    underruns: int = 0  # times the earpiece ran dry and silence was played
    overruns_in: int = 0  # microphone frames dropped because the engine fell behind
    overruns_out: int = 0  # earpiece frames dropped because the card fell behind
    losses: int = 0  # times the device went away
    reopens: int = 0  # times it was opened again afterwards


#: Pa_Initialize/Pa_Terminate keep a global count without a lock of their own, and a
#: device that failed is closed on another thread while a re-open may be starting.
PORTAUDIO_LOCK = threading.Lock()


def open_portaudio() -> pyaudio.PyAudio:
    silence_audio_libraries()
    with PORTAUDIO_LOCK:
        return pyaudio.PyAudio()


def _mono_channels(pa: pyaudio.PyAudio, device: DeviceInfo, rate: int, need: str) -> int:
    """1 when the device takes mono, else 2 (most USB headsets' earpieces are stereo only)."""
    for channels in (1, 2):
        if channels > (device.inputs if need == "input" else device.outputs):
            break
        try:
            if need == "input":
                pa.is_format_supported(rate, input_device=device.index,
                                       input_channels=channels, input_format=pyaudio.paInt16)
            else:
                pa.is_format_supported(rate, output_device=device.index,
                                       output_channels=channels, output_format=pyaudio.paInt16)
        except ValueError:
            continue
        return channels
    raise SoundDeviceError(
        f"sound: device {device.describe()} does not take 16-bit {need} at {rate} Hz "
        "in 1 or 2 channels; choose another rate or device"
    )


class Headset:
    """One open microphone stream and one earpiece stream, moved in 8 kHz frames."""

    def __init__(
        self,
        *,
        device: int | str | None = None,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        rate: int | None = None,
        clock: Clock = time.monotonic,
        stats: HeadsetStats | None = None,
    ) -> None:
        """Open the device (blocking: PortAudio probes every device; run it off the loop).

        ``device`` names both sides; ``input_device``/``output_device`` override one side
        (a microphone on another card). ``rate`` defaults to the earpiece device's own.
        """
        self.clock = clock
        self.stats = stats if stats is not None else HeadsetStats()
        self._pa = open_portaudio()
        self._in_stream: Any = None
        self._out_stream: Any = None
        try:
            pa = self._pa
            self.input = choose_device(
                pa, device if input_device is None else input_device, need="input"
            )
            self.output = choose_device(
                pa, device if output_device is None else output_device, need="output"
            )
            self.rate = rate if rate is not None else self.output.default_rate
            try:
                check_rate(self.rate)
            except ValueError as exc:
                raise SoundDeviceError(f"sound: {exc}") from None
            self.in_channels = _mono_channels(pa, self.input, self.rate, "input")
            self.out_channels = _mono_channels(pa, self.output, self.rate, "output")
            self._down = StreamResampler(self.rate, SAMPLE_RATE)
            self._up = StreamResampler(SAMPLE_RATE, self.rate)
            self.block = self._down.block_in  # device samples in 20 ms
            self._in_bytes = self.block * 2 * self.in_channels
            self._out_stream = pa.open(
                rate=self.rate, channels=self.out_channels, format=pyaudio.paInt16,
                output=True, output_device_index=self.output.index,
                frames_per_buffer=self.block,
            )
            self._in_stream = pa.open(
                rate=self.rate, channels=self.in_channels, format=pyaudio.paInt16,
                input=True, input_device_index=self.input.index,
                frames_per_buffer=self.block * INPUT_BUFFER_BLOCKS,
            )
        except OSError as exc:
            self.close()
            raise SoundDeviceError(
                f"sound: could not open {self.describe_devices()} at "
                f"{getattr(self, 'rate', '?')} Hz: {exc}"
            ) from exc
        except BaseException:
            self.close()
            raise
        self._queue: deque[bytes] = deque()  # earpiece blocks waiting for room in the card
        self._held = 0.0  # seconds of audio the card still holds, by our account
        self._last_write: float | None = None
        self._last_input = clock()  # when the microphone last gave audio
        self._silence_out = self._to_device(bytes(FRAME_BYTES))
        log.info("sound: opened %s at %d Hz", self.describe_devices(), self.rate)

    def describe_devices(self) -> str:
        inp = getattr(self, "input", None)
        out = getattr(self, "output", None)
        if inp is None or out is None:
            return "the headset device"
        if inp.index == out.index:
            return f"device {inp.describe()}"
        return f"microphone {inp.describe()} and earpiece {out.describe()}"

    # ------------------------------------------------------------------ per tick
    def read_frames(self) -> list[bytes]:
        """Every whole microphone block PortAudio has ready, as 8 kHz frames, oldest first."""
        stream = self._in_stream
        if stream is None:
            raise DeviceLost(f"sound: {self.describe_devices()} is closed")
        try:
            blocks = stream.get_read_available() // self.block
            if blocks > MAX_BACKLOG_BLOCKS:
                # The engine fell behind: drop the oldest, keep the delay bounded.
                dropped = blocks - MAX_BACKLOG_BLOCKS
                stream.read(dropped * self.block, exception_on_overflow=False)
                self.stats.overruns_in += dropped
                blocks = MAX_BACKLOG_BLOCKS
            data = stream.read(blocks * self.block, exception_on_overflow=False) if blocks else b""
        except OSError as exc:
            raise self._lost("microphone", exc) from exc
        now = self.clock()
        if blocks:
            self._last_input = now
        elif now - self._last_input > STALL_SECONDS:
            raise DeviceLost(
                f"sound: no audio from the microphone of {self.describe_devices()} for "
                f"{now - self._last_input:.1f} s"
            )
        frames = []
        pcm = np.frombuffer(data, dtype="<i2")
        if self.in_channels > 1:
            # Mix down rather than pick a side: a headset may wire its capsule to either.
            pcm = pcm.reshape(-1, self.in_channels).mean(axis=1).astype(np.int16)
        for i in range(blocks):
            out = self._down.process(pcm[i * self.block : (i + 1) * self.block])
            frames.append(out.astype("<i2", copy=False).tobytes())
        self.stats.frames_in += len(frames)
        return frames

    def write_frame(self, frame: bytes) -> None:
        """Queue one 8 kHz frame for the earpiece and hand the card what it has room for."""
        if len(frame) != FRAME_BYTES:
            raise LineError(f"sound: a frame is {FRAME_BYTES} bytes of slin, got {len(frame)}")
        now = self.clock()
        if self._last_write is None:
            self._queue.extend([self._silence_out] * PREFILL_BLOCKS)  # the first cushion
        else:
            self._held -= now - self._last_write
        self._last_write = now
        self._queue.append(self._to_device(frame))
        self.stats.frames_out += 1
        while len(self._queue) > MAX_OUT_BLOCKS:
            self._queue.popleft()
            self.stats.overruns_out += 1
        self._flush()

    def _flush(self) -> None:
        stream = self._out_stream
        if stream is None:
            raise DeviceLost(f"sound: {self.describe_devices()} is closed")
        queue = self._queue
        try:
            room = stream.get_write_available() // self.block
            if room == 0:
                # The card is full (or its server stalled): whatever our account says,
                # it is not starving. The queue waits, and overflows above.
                self._held = max(self._held, 0.0)
                return
            if self._held < 0:
                # The card played everything we gave it, then nothing for -held seconds:
                # count it and rebuild the cushion with silence ahead of the queued audio.
                self.stats.underruns += 1
                queue.extendleft([self._silence_out] * PREFILL_BLOCKS)
                self._held = 0.0
            while queue and room > 0:
                stream.write(queue.popleft(), self.block, exception_on_underflow=False)
                self._held += BLOCK_SECONDS
                room -= 1
        except OSError as exc:
            raise self._lost("earpiece", exc) from exc

    def _to_device(self, frame: bytes) -> bytes:
        pcm = self._up.process(np.frombuffer(frame, dtype="<i2"))
        if self.out_channels > 1:
            pcm = np.repeat(pcm, self.out_channels)  # the same voice in both ears
        return pcm.astype("<i2", copy=False).tobytes()

    def _lost(self, side: str, exc: OSError) -> DeviceLost:
        # PyAudio closed the stream that failed; the caller closes the rest (see close).
        return DeviceLost(f"sound: the {side} of {self.describe_devices()} failed: {exc}")

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Close both streams and PortAudio; safe on a stream PyAudio already closed.

        This can block for as long as a stalled sound server does (the PulseAudio plugin
        waits for it), so the driver calls it off the event loop.
        """
        with PORTAUDIO_LOCK:
            for name in ("_in_stream", "_out_stream"):
                stream = getattr(self, name, None)
                setattr(self, name, None)
                if stream is None:
                    continue
                # Close without stopping: Pa_StopStream would drain the card's buffer, which
                # on a device without a clock plays out stale buffer contents; closing
                # discards it. "Stream not open" when PyAudio closed it after an error.
                with contextlib.suppress(OSError):
                    stream.close()
            pa = getattr(self, "_pa", None)
            self._pa = None
            if pa is not None:
                pa.terminate()

    @property
    def closed(self) -> bool:
        return self._in_stream is None or self._out_stream is None
