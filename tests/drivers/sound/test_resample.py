"""The block resampler: the same result as resampling the whole stream, and tones keep pitch."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import upfirdn

from drivers.sound.resample import StreamResampler


def _tone(hz: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.rint(8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _blocks(r: StreamResampler, x: np.ndarray) -> np.ndarray:
    return np.concatenate([r.process(x[i : i + r.block_in]) for i in range(0, len(x), r.block_in)])


@pytest.mark.parametrize(("rate_in", "rate_out"), [(48000, 8000), (8000, 48000),
                                                   (44100, 8000), (8000, 44100), (16000, 8000)])
def test_blocks_match_the_whole_stream_resampled_at_once(rate_in: int, rate_out: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(-12000, 12000, rate_in // 2).astype(np.int16)  # 0.5 s of noise
    r = StreamResampler(rate_in, rate_out)
    got = _blocks(r, x)
    assert len(got) == rate_out // 2
    whole = upfirdn(r._taps, x.astype(np.float64), r.up, r.down)[: len(got)]
    # Identical to the last rounding step: no seams at the 20 ms block edges.
    assert np.max(np.abs(np.clip(np.rint(whole), -32768, 32767) - got)) == 0


@pytest.mark.parametrize(("rate_in", "rate_out"), [(48000, 8000), (8000, 48000), (44100, 8000)])
def test_a_1khz_tone_stays_at_1khz(rate_in: int, rate_out: int) -> None:
    r = StreamResampler(rate_in, rate_out)
    out = _blocks(r, _tone(1000.0, rate_in, 1.0))[rate_out // 10 :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * rate_out / len(out)
    assert abs(peak_hz - 1000.0) < 2.0
    # Nearly all the energy is the tone (no aliases or imaging from the rate change).
    bins = np.fft.rfftfreq(len(out), 1 / rate_out)
    near = spectrum[np.abs(bins - 1000.0) < 20] ** 2
    assert near.sum() / (spectrum**2).sum() > 0.999
    assert 0.95 < np.sqrt(np.mean(out**2)) / (8000 / np.sqrt(2)) < 1.05


def test_above_the_8khz_nyquist_is_filtered_out() -> None:
    out = _blocks(StreamResampler(48000, 8000), _tone(5000.0, 48000, 0.5))[400:]
    assert np.max(np.abs(out)) < 80  # 5 kHz would alias to 3 kHz at full level


def test_same_rate_passes_samples_through() -> None:
    x = _tone(440.0, 8000, 0.1)
    assert np.array_equal(_blocks(StreamResampler(8000, 8000), x), x)


def test_rates_and_blocks_are_checked() -> None:
    with pytest.raises(ValueError, match="11025 Hz does not divide into 20 ms blocks"):
        StreamResampler(11025, 8000)
    with pytest.raises(ValueError, match="a block is 960 samples"):
        StreamResampler(48000, 8000).process(np.zeros(160, np.int16))
