"""Reading and writing the appliance's WAV format: 8 kHz, 16-bit, mono slin.

Prompts, test files and the ``appliance detect`` commands all come through here, so a file
in any other format is refused with a message that says what it is and what was expected.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from appliance.media.frame import SAMPLE_RATE, Samples


class WavFormatError(ValueError):
    """The file is not 8 kHz 16-bit mono PCM WAV (the message says what it is)."""


def read_slin(path: str | Path, *, channels: int = 1, whole: bool = False) -> Samples:
    """Samples of an 8 kHz 16-bit PCM WAV file; ``channels`` > 1 returns interleaved samples.

    With ``whole`` a file must hold all the audio its header declares, and some: a prompt
    read while it is being copied in, or left by a copy that died, is refused instead of
    being played cut short or as silence."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, nch = w.getframerate(), w.getsampwidth(), w.getnchannels()
            if (rate, width, nch) != (SAMPLE_RATE, 2, channels):
                raise WavFormatError(
                    f"{path}: {rate} Hz, {8 * width}-bit, {nch} channel(s); expected "
                    f"{SAMPLE_RATE} Hz, 16-bit, {channels} channel(s)"
                )
            declared = w.getnframes()
            data = w.readframes(declared)
    except wave.Error as exc:
        raise WavFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    except EOFError as exc:
        raise WavFormatError(f"{path}: truncated WAV file") from exc
    if whole and (not data or len(data) < declared * 2 * channels):
        raise WavFormatError(
            f"{path}: holds {len(data)} bytes of audio, its header declares "
            f"{declared * 2 * channels}: the file is cut short (still being copied?)")
    # A file cut off mid-sample (a copy or download that stopped) loses the half sample.
    usable = len(data) - len(data) % (2 * channels)
    return np.frombuffer(data, dtype="<i2", count=usable // 2).astype(np.int16)


def write_slin(path: str | Path, samples: Samples | bytes, *, channels: int = 1) -> None:
    """Write int16 samples (or slin bytes) as an 8 kHz 16-bit WAV file."""
    data = samples if isinstance(samples, bytes) else np.asarray(samples, "<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(data)
