"""Tone generation: DTMF, the China call-progress tones and the record beep, at 8 kHz.

Everything the appliance plays that is not speech comes from here, and so do the test
signals for the detectors, which is why DTMF takes a level per tone, a frequency deviation
and a twist. Levels are in dBm0 with the A-law convention that a full-scale sine (peak
32767) is +3.14 dBm0. The China tones are 450 Hz with the cadences of ``indications.conf``
[cn]; :class:`ToneSource` plays one endlessly, a 20 ms frame at a time, from one
precomputed loop of bytes so the per-frame cost is a list lookup.
"""

from __future__ import annotations

import math

import numpy as np

from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, SAMPLES_PER_FRAME, Samples

DBM0_OFFSET_DBOV = 3.14
"""A full-scale sine is this many dB above 0 dBm0 (A-law's maximum, +3.14 dBm0)."""

FULL_SCALE = 32767
_PER_MS = SAMPLE_RATE // 1000

DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_FREQS: dict[str, tuple[float, float]] = {
    key: (DTMF_ROWS[r], DTMF_COLS[c]) for r, row in enumerate(_KEYPAD) for c, key in enumerate(row)
}
"""Digit -> (low/row Hz, high/column Hz)."""

CHINA_TONE_HZ = 450.0
# (on ms, off ms) steps of one period; an empty tuple is a continuous tone. Source:
# asterisk indications.conf.sample [cn] and dahdi-tools zonedata.c.
CHINA_CADENCES: dict[str, tuple[tuple[int, int], ...]] = {
    "dial": (),
    "ringback": ((1000, 4000),),
    "busy": ((350, 350),),
    "congestion": ((700, 700),),
    "call_waiting": ((400, 4000),),
    "vacant": ((100, 100), (100, 100), (100, 100), (400, 400)),
}


def amplitude(level_dbm0: float) -> float:
    """Peak amplitude of a sine at ``level_dbm0``."""
    return FULL_SCALE * 10.0 ** ((level_dbm0 - DBM0_OFFSET_DBOV) / 20.0)


def _to_int16(x: np.ndarray) -> Samples:
    # Clip rather than wrap: a hot twist or level must saturate like a real codec would.
    return np.clip(np.rint(x), -FULL_SCALE, FULL_SCALE).astype(np.int16)


def _sine(hz: float, n: int, amp: float, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + n, dtype=np.float64)
    return amp * np.sin(2.0 * np.pi * hz / SAMPLE_RATE * t)


def _samples(ms: float, what: str) -> int:
    if ms < 0:
        raise ValueError(f"{what} must be >= 0 ms, got {ms}")
    return round(ms * SAMPLE_RATE / 1000)


def tone(hz: float, ms: float, level_dbm0: float = -10.0) -> Samples:
    """One sine of ``ms`` milliseconds at ``level_dbm0``, starting at phase 0."""
    return _to_int16(_sine(hz, _samples(ms, "a tone"), amplitude(level_dbm0)))


def dual_tone(
    low_hz: float, high_hz: float, ms: float, low_dbm0: float, high_dbm0: float
) -> Samples:
    """Two sines summed, each at its own level (the building block of DTMF tests)."""
    n = _samples(ms, "a tone")
    mix = _sine(low_hz, n, amplitude(low_dbm0)) + _sine(high_hz, n, amplitude(high_dbm0))
    return _to_int16(mix)


def dtmf(
    digit: str,
    ms: int = 80,
    level_dbm0: float = -7.0,
    *,
    deviation: float = 0.0,
    twist_db: float = 0.0,
) -> Samples:
    """One DTMF digit (0-9, *, #, A-D).

    ``deviation`` is a fractional frequency offset applied to both tones (0.015 = +1.5 %).
    ``twist_db`` is the high tone's level minus the low tone's: positive is normal twist
    (high group louder), negative reverse. The louder tone stays at ``level_dbm0`` and the
    other is attenuated, so a twist never pushes a tone above the requested level.
    """
    freqs = DTMF_FREQS.get(digit.upper()) if len(digit) == 1 else None
    if freqs is None:
        raise ValueError(f"DTMF digit must be one of 0-9 * # A-D, got {digit!r}")
    low, high = (f * (1.0 + deviation) for f in freqs)
    low_level = level_dbm0 - max(twist_db, 0.0)
    high_level = level_dbm0 + min(twist_db, 0.0)
    return dual_tone(low, high, ms, low_level, high_level)


def dtmf_sequence(
    digits: str, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -7.0
) -> Samples:
    """Digits as ``on_ms`` of tone then ``off_ms`` of silence each (sequences concatenate)."""
    gap = np.zeros(_samples(off_ms, "a pause"), dtype=np.int16)
    parts: list[Samples] = []
    for d in digits:
        parts += [dtmf(d, on_ms, level_dbm0), gap]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def _cadence_period(name: str) -> tuple[tuple[int, int], ...]:
    try:
        return CHINA_CADENCES[name]
    except KeyError:
        raise ValueError(
            f"China tone must be one of {', '.join(CHINA_CADENCES)}, got {name!r}"
        ) from None


def _gate(cadence: tuple[tuple[int, int], ...], n: int) -> np.ndarray:
    """Boolean on/off mask of ``n`` samples for the cadence, starting with the first 'on'."""
    if not cadence:
        return np.ones(n, dtype=bool)
    steps = [(on * _PER_MS, off * _PER_MS) for on, off in cadence]
    period = np.concatenate([np.arange(on + off) < on for on, off in steps])
    reps = -(-n // len(period))
    return np.tile(period, reps)[:n]


def china_tone(name: str, seconds: float, level_dbm0: float = -10.0) -> Samples:
    """``seconds`` of a China call-progress tone, from the start of an 'on' step.

    The 450 Hz carrier runs continuously under the cadence gate, so every burst is a slice
    of one sine; that is what lets :class:`ToneSource` loop without phase jumps.
    """
    cadence = _cadence_period(name)
    n = _samples(seconds * 1000.0, "a tone")
    carrier = _sine(CHINA_TONE_HZ, n, amplitude(level_dbm0))
    return _to_int16(np.where(_gate(cadence, n), carrier, 0.0))


def beep(ms: int = 300, hz: float = 1000.0, level_dbm0: float = -10.0) -> Samples:
    """The "record after the beep" tone, with 5 ms raised-cosine edges so it does not click."""
    x = _sine(hz, _samples(ms, "a beep"), amplitude(level_dbm0))
    ramp = min(40, len(x) // 2)
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        x[:ramp] *= edge
        x[len(x) - ramp :] *= edge[::-1]
    return _to_int16(x)


class ToneSource:
    """An endless China tone, one 320-byte slin frame per :meth:`next_frame` call.

    The loop holds a whole number of cadence periods, frames and carrier cycles (the
    least common multiple of the three), so cycling it is seamless in both cadence and phase.
    """

    def __init__(self, name: str, level_dbm0: float = -10.0) -> None:
        cadence = _cadence_period(name)
        period = sum(on + off for on, off in cadence) * _PER_MS or SAMPLES_PER_FRAME
        carrier = SAMPLE_RATE // math.gcd(round(CHINA_TONE_HZ), SAMPLE_RATE)
        loop = math.lcm(period, SAMPLES_PER_FRAME, carrier)
        pcm = china_tone(name, loop / SAMPLE_RATE, level_dbm0).astype("<i2").tobytes()
        self.name = name
        self._frames = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        self._next = 0

    last = False  # endless

    def next_frame(self) -> bytes:
        frame = self._frames[self._next]
        self._next = (self._next + 1) % len(self._frames)
        return frame

    @property
    def loop_frames(self) -> int:
        """Frames before the source repeats itself exactly."""
        return len(self._frames)

    def reset(self) -> None:
        """Start again from the beginning of an 'on' step."""
        self._next = 0
