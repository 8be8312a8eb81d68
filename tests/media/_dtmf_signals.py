"""Test signals for the DTMF detector: exact tones at dBm0 levels, twist, AWGN, interferers.

Levels follow G.711 A-law: a sine of 0 dBm0 has a peak 3.14 dB below full scale, so
``amplitude(0) ≈ 22 830``. Every random source takes an explicit seed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FS = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"
FULL_SCALE = 32767.0
DBM0_OFFSET_DB = 3.14  # a 0 dBm0 sine is this far below a full-scale sine (A-law)

Signal = npt.NDArray[np.float64]


def amplitude(dbm0: float) -> float:
    """Peak amplitude of a sine at ``dbm0``."""
    return FULL_SCALE * 10 ** ((dbm0 - DBM0_OFFSET_DB) / 20)


def freqs(key: str) -> tuple[float, float]:
    i = KEYS.index(key)
    return ROWS[i // 4], COLS[i % 4]


def samples(ms: float) -> int:
    return round(ms * FS / 1000)


def tone(freq: float, ms: float, dbm0: float, phase: float = 0.0) -> Signal:
    n = np.arange(samples(ms))
    return amplitude(dbm0) * np.sin(2 * np.pi * freq * n / FS + phase)


def silence(ms: float) -> Signal:
    return np.zeros(samples(ms))


def dtmf(
    key: str,
    ms: float = 50,
    *,
    low_dbm0: float = -10.0,
    high_dbm0: float | None = None,
    low_dev: float = 0.0,
    high_dev: float = 0.0,
    phase: float = 0.0,
) -> Signal:
    """One key: ``low_dev``/``high_dev`` are relative frequency offsets (0.015 = +1.5 %);
    ``high_dbm0`` defaults to the low level (no twist)."""
    fl, fh = freqs(key)
    hi = low_dbm0 if high_dbm0 is None else high_dbm0
    return tone(fl * (1 + low_dev), ms, low_dbm0, phase) + tone(
        fh * (1 + high_dev), ms, hi, 2 * phase + 1
    )


def keys(
    digits: str, on_ms: float = 50, off_ms: float = 50, lead_ms: float = 100, **kw: float
) -> Signal:
    """Digits separated by ``off_ms`` of silence, with ``lead_ms`` before and 100 ms after."""
    parts = [silence(lead_ms)]
    for k in digits:
        parts += [dtmf(k, on_ms, **kw), silence(off_ms)]
    parts.append(silence(100))
    return np.concatenate(parts)


def power_dbm0(x: Signal) -> float:
    """Mean power of ``x`` in dBm0 (a sine's power is amplitude²/2)."""
    ref = amplitude(0.0) ** 2 / 2
    return float(10 * np.log10(np.mean(np.square(x)) / ref))


def awgn(n: int, dbm0: float, seed: int) -> Signal:
    """White Gaussian noise over the whole 0-4 kHz band at ``dbm0`` total power."""
    sigma = np.sqrt(amplitude(0.0) ** 2 / 2 * 10 ** (dbm0 / 10))
    return np.random.default_rng(seed).normal(0.0, sigma, n)


def to_slin(x: Signal) -> npt.NDArray[np.int16]:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)
