"""Polyphase resampling between a sound card's rate and the engine's 8 kHz, block by block.

Every line hands the engine 20 ms frames of 8 kHz audio, while a headset usually runs at
44.1 or 48 kHz. The sound driver moves audio in 20 ms blocks, so this resampler takes one
block at the device rate and gives one block at the other rate, keeping the filter's
history between blocks: the result is the same as resampling the whole stream at once
(no clicks at block edges), at a fixed delay of half the filter. The filter is the one
``scipy.signal.resample_poly`` designs (Kaiser-windowed sinc, cut-off at the lower
Nyquist frequency), applied with ``scipy.signal.upfirdn``, so no Python loop runs per sample.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin, upfirdn

from appliance.media.frame import FRAME_MS

BLOCKS_PER_SECOND = 1000 // FRAME_MS  # 50

Int16s = npt.NDArray[np.int16]


def check_rate(rate: int) -> None:
    """A rate the driver can cut into whole 20 ms blocks (every common rate but 11025 Hz)."""
    if rate <= 0 or rate % BLOCKS_PER_SECOND:
        raise ValueError(
            f"sample rate {rate} Hz does not divide into 20 ms blocks; use a multiple of "
            f"{BLOCKS_PER_SECOND} Hz (8000, 16000, 44100, 48000...)"
        )


class StreamResampler:
    """``rate_in`` to ``rate_out``, one 20 ms block of int16 samples per :meth:`process`."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        check_rate(rate_in)
        check_rate(rate_out)
        g = math.gcd(rate_in, rate_out)
        self.up = rate_out // g
        self.down = rate_in // g
        self.block_in = rate_in // BLOCKS_PER_SECOND
        self.block_out = rate_out // BLOCKS_PER_SECOND
        self.passthrough = self.up == self.down
        if self.passthrough:
            self._taps = np.ones(1)
            self._history = np.zeros(0)
            self._first = 0
            return
        # resample_poly's design: 10 zero crossings either side at the higher of the rates.
        most = max(self.up, self.down)
        half = 10 * most
        self._taps = firwin(2 * half + 1, 1.0 / most, window=("kaiser", 5.0)) * self.up
        # Input kept from earlier blocks: enough that the filter never reaches before it,
        # and a whole number of `down` samples, so every block starts at the same phase
        # of the polyphase filter (a block is always 160 × `down` upsampled samples).
        need = math.ceil((len(self._taps) - 1) / self.up)
        keep = math.ceil(need / self.down) * self.down
        self._history = np.zeros(keep)
        self._first = keep * self.up // self.down  # index of this block's first output

    @property
    def delay_out(self) -> float:
        """The filter's delay, in output samples."""
        return (len(self._taps) - 1) / 2 / self.down

    def process(self, block: Int16s) -> Int16s:
        """One block of ``block_in`` samples in, ``block_out`` samples out."""
        if block.shape != (self.block_in,):
            raise ValueError(
                f"a block is {self.block_in} samples at this rate, got shape {block.shape}"
            )
        if self.passthrough:
            return block.astype(np.int16, copy=True)
        buf = np.concatenate((self._history, block.astype(np.float64)))
        out = upfirdn(self._taps, buf, self.up, self.down)[
            self._first : self._first + self.block_out
        ]
        self._history = buf[len(buf) - len(self._history) :]
        # Clip, not wrap: a full-scale input can overshoot slightly after filtering.
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
