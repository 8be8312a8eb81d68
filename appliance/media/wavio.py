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
            _check(path, rate, width, nch, channels)
            declared = w.getnframes()
            data = w.readframes(declared)
    except wave.Error as exc:
        if str(exc) != f"unknown format: {_EXTENSIBLE}":
            raise WavFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
        # Python's wave (before 3.12) knows only the plain PCM header; some editors write
        # plain 16-bit PCM in the extensible one.
        rate, width, nch, declared, data = _read_extensible(path)
        _check(path, rate, width, nch, channels)
    except EOFError as exc:
        raise WavFormatError(f"{path}: truncated WAV file") from exc
    if whole and (not data or len(data) < declared * 2 * channels):
        raise WavFormatError(
            f"{path}: holds {len(data)} bytes of audio, its header declares "
            f"{declared * 2 * channels}: the file is cut short (still being copied?)")
    # A file cut off mid-sample (a copy or download that stopped) loses the half sample.
    usable = len(data) - len(data) % (2 * channels)
    return np.frombuffer(data, dtype="<i2", count=usable // 2).astype(np.int16)


def _check(path: Path, rate: int, width: int, nch: int, channels: int) -> None:
    if (rate, width, nch) != (SAMPLE_RATE, 2, channels):
        raise WavFormatError(
            f"{path}: {rate} Hz, {8 * width}-bit, {nch} channel(s); expected "
            f"{SAMPLE_RATE} Hz, 16-bit, {channels} channel(s)"
        )


def _read_extensible(path: Path) -> tuple[int, int, int, int, bytes]:
    """Rate, sample width, channels, declared frames and the audio of a WAVE_FORMAT_EXTENSIBLE
    file whose samples are integer PCM; anything else is a WavFormatError."""
    raw = path.read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavFormatError(f"{path}: not a WAV file")
    fmt: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        body = raw[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            fmt = body
        elif chunk == b"data":
            if fmt is None or len(fmt) < 40:
                raise WavFormatError(f"{path}: extensible WAV without a whole fmt chunk "
                                     "before its data")
            nch = int.from_bytes(fmt[2:4], "little")
            rate = int.from_bytes(fmt[4:8], "little")
            bits = int.from_bytes(fmt[14:16], "little")
            valid = int.from_bytes(fmt[18:20], "little")
            sub = fmt[24:40]
            if sub[2:] != _PCM_GUID_TAIL or int.from_bytes(sub[:2], "little") != 1:
                raise WavFormatError(f"{path}: extensible WAV whose samples are not integer "
                                     f"PCM (subformat {sub.hex()})")
            if valid not in (0, bits):
                raise WavFormatError(f"{path}: {valid} valid bits in {bits}-bit samples; "
                                     "expected 16-bit")
            width = bits // 8
            frame = max(1, nch * width)
            return rate, width, nch, size // frame, body
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
    raise WavFormatError(f"{path}: WAV file without a data chunk")


#: WAVE_FORMAT_EXTENSIBLE, and the GUID of its PCM subformat after the format code
_EXTENSIBLE = 0xFFFE
_PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def write_slin(path: str | Path, samples: Samples | bytes, *, channels: int = 1) -> None:
    """Write int16 samples (or slin bytes) as an 8 kHz 16-bit WAV file."""
    data = samples if isinstance(samples, bytes) else np.asarray(samples, "<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(data)
