"""Tones measured back: DTMF frequencies by FFT peak, levels in dBm0, China cadences to the
millisecond, and the endless ToneSource against the one-shot generator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from appliance.media import tones
from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE
from appliance.media.tones import (
    CHINA_CADENCES,
    DBM0_OFFSET_DBOV,
    DTMF_FREQS,
    ToneSource,
    beep,
    china_tone,
    dtmf,
    dtmf_sequence,
)

ALL_DIGITS = "123A456B789C*0#D"


def peak_hz(x: np.ndarray, lo: float, hi: float) -> float:
    """Frequency of the largest FFT bin between lo and hi (zero-padded to 0.1 Hz bins)."""
    n = max(len(x), 10 * SAMPLE_RATE)
    spec = np.abs(np.fft.rfft(x.astype(np.float64), n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    band = (freqs >= lo) & (freqs <= hi)
    return float(freqs[band][np.argmax(spec[band])])


def level_dbm0(x: np.ndarray, hz: float) -> float:
    """Level of the component at ``hz`` by least-squares fit of a sine and cosine."""
    t = np.arange(len(x)) / SAMPLE_RATE
    basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
    return 20 * np.log10(np.hypot(*coef) / 32767) + DBM0_OFFSET_DBOV


def runs_ms(x: np.ndarray) -> list[tuple[bool, int]]:
    """(on?, length in ms) runs of a gated tone, judged per 1 ms block (8 samples).

    A 450 Hz sine has an exact zero every 80 samples, so single samples cannot tell on from
    off; an 8-sample block of an 'on' step always has energy.
    """
    on = np.abs(x[: len(x) // 8 * 8].reshape(-1, 8)).sum(axis=1) > 0
    edges = np.flatnonzero(np.diff(on.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(on)]
    return [(bool(on[a]), b - a) for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("digit", list(ALL_DIGITS))
def test_dtmf_frequencies_by_fft_peak(digit: str) -> None:
    x = dtmf(digit, ms=1000)
    low, high = DTMF_FREQS[digit]
    assert x.dtype == np.int16 and len(x) == SAMPLE_RATE
    assert peak_hz(x, 600, 1000) == pytest.approx(low, abs=0.5)
    assert peak_hz(x, 1100, 1700) == pytest.approx(high, abs=0.5)


def test_dtmf_letters_case_insensitive_and_bad_digit_named() -> None:
    np.testing.assert_array_equal(dtmf("a"), dtmf("A"))
    with pytest.raises(ValueError, match="'X'"):
        dtmf("X")
    with pytest.raises(ValueError, match="'12'"):
        dtmf("12")


def test_dtmf_duration_and_level_per_tone() -> None:
    x = dtmf("5", ms=80, level_dbm0=-7.0)
    assert len(x) == 640
    assert level_dbm0(x, 770.0) == pytest.approx(-7.0, abs=0.05)
    assert level_dbm0(x, 1336.0) == pytest.approx(-7.0, abs=0.05)
    quiet = dtmf("5", ms=80, level_dbm0=-30.0)
    assert level_dbm0(quiet, 770.0) == pytest.approx(-30.0, abs=0.1)


def test_dtmf_deviation_moves_both_tones() -> None:
    x = dtmf("9", ms=1000, deviation=0.015)
    assert peak_hz(x, 600, 1000) == pytest.approx(852 * 1.015, abs=0.5)
    assert peak_hz(x, 1100, 1700) == pytest.approx(1477 * 1.015, abs=0.5)
    y = dtmf("9", ms=1000, deviation=-0.035)
    assert peak_hz(y, 600, 1000) == pytest.approx(852 * 0.965, abs=0.5)


@pytest.mark.parametrize(("twist", "low", "high"), [(6.0, -13.0, -7.0), (-4.0, -7.0, -11.0)])
def test_dtmf_twist_attenuates_the_weaker_tone(twist: float, low: float, high: float) -> None:
    x = dtmf("1", ms=200, level_dbm0=-7.0, twist_db=twist)
    assert level_dbm0(x, 697.0) == pytest.approx(low, abs=0.05)
    assert level_dbm0(x, 1209.0) == pytest.approx(high, abs=0.05)


def test_full_scale_sine_is_plus_3_14_dbm0() -> None:
    x = tones.tone(1000.0, 100, level_dbm0=DBM0_OFFSET_DBOV)
    assert int(np.max(np.abs(x))) == 32767


def test_dtmf_sequence_layout() -> None:
    x = dtmf_sequence("12#", on_ms=60, off_ms=40)
    assert len(x) == 3 * (60 + 40) * 8
    assert runs_ms(x) == [(True, 60), (False, 40)] * 3
    np.testing.assert_array_equal(x[800:1280], dtmf("2", 60))
    assert len(dtmf_sequence("")) == 0


@pytest.mark.parametrize("name", [n for n in CHINA_CADENCES if n != "dial"])
def test_china_cadence_measured_back(name: str) -> None:
    cadence = CHINA_CADENCES[name]
    period_ms = sum(on + off for on, off in cadence)
    x = china_tone(name, 2 * period_ms / 1000)
    expected = [step for on, off in cadence for step in ((True, on), (False, off))] * 2
    assert runs_ms(x) == expected
    on = x[: cadence[0][0] * 8]
    assert peak_hz(on, 300, 600) == pytest.approx(450.0, abs=0.5)
    assert level_dbm0(on, 450.0) == pytest.approx(-10.0, abs=0.05)


def test_china_dial_tone_is_continuous_and_level_follows() -> None:
    x = china_tone("dial", 3.0, level_dbm0=-20.0)
    assert len(x) == 24000
    assert runs_ms(x) == [(True, 3000)]
    assert level_dbm0(x, 450.0) == pytest.approx(-20.0, abs=0.05)


def test_china_tone_unknown_name() -> None:
    with pytest.raises(ValueError, match="'ring'"):
        china_tone("ring", 1.0)
    with pytest.raises(ValueError, match="'ring'"):
        ToneSource("ring")


def test_beep() -> None:
    x = beep()
    assert len(x) == 300 * 8
    assert peak_hz(x, 500, 1500) == pytest.approx(1000.0, abs=0.5)
    assert level_dbm0(x[80:-80], 1000.0) == pytest.approx(-10.0, abs=0.05)
    # Raised-cosine edges: no click at either end.
    assert abs(int(x[0])) == 0 and abs(int(x[-1])) < 100


@pytest.mark.parametrize("name", list(CHINA_CADENCES))
def test_tone_source_matches_generator_and_loops_seamlessly(name: str) -> None:
    src = ToneSource(name, level_dbm0=-12.0)
    loop_frames = src.loop_frames
    frames = [src.next_frame() for _ in range(2 * loop_frames + 7)]
    assert all(isinstance(f, bytes) and len(f) == FRAME_BYTES for f in frames)
    pcm = np.frombuffer(b"".join(frames), dtype="<i2")
    # Same samples as the one-shot generator for the whole run, across the loop's wrap:
    # cadence and carrier phase both continue.
    np.testing.assert_array_equal(pcm, china_tone(name, len(pcm) / SAMPLE_RATE, -12.0))


def test_tone_source_is_phase_continuous_across_frames() -> None:
    src = ToneSource("dial")
    pcm = np.frombuffer(b"".join(src.next_frame() for _ in range(50)), dtype="<i2")
    amp = tones.amplitude(-10.0)
    max_step = amp * 2 * np.pi * 450 / SAMPLE_RATE + 1  # steepest slope of the sine
    assert np.max(np.abs(np.diff(pcm.astype(np.int32)))) <= max_step
    src.reset()
    assert src.next_frame() == pcm[:160].astype("<i2").tobytes()
