"""Reading and writing the appliance's WAV format: 8 kHz, 16-bit, mono slin.

Prompts, test files and the ``appliance detect`` commands all come through here, so a file
in any other format is refused with a message that says what it is and what was expected.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.media.frame import SAMPLE_RATE, Samples


class WavFormatError(ValueError):
    """The file is not 8 kHz 16-bit mono PCM WAV (the message says what it is)."""


def read_slin(path: str | Path, *, channels: int = 1, whole: bool = False,
              complete: bool = False) -> Samples:
    """Samples of an 8 kHz 16-bit PCM WAV file; ``channels`` > 1 returns interleaved samples.

    With ``complete`` a file must hold all the audio its header declares (a file that
    declares none may be empty); with ``whole``, that and some: a prompt read while it is
    being copied in, or left by a copy that died, is refused instead of being played cut
    short or as silence. The file is read once (a pipe works too)."""
    path = Path(path)
    wav = parse_wav(path.read_bytes(), str(path))
    if (wav.rate, wav.bits, wav.channels) != (SAMPLE_RATE, 16, channels):
        raise WavFormatError(
            f"{path}: {wav.rate} Hz, {wav.bits}-bit, {wav.channels} channel(s); expected "
            f"{SAMPLE_RATE} Hz, 16-bit, {channels} channel(s)"
        )
    data = wav.data
    if whole and not data and not wav.declared:
        raise WavFormatError(f"{path}: holds no audio")
    if (whole or complete) and wav.declared is not None and len(data) < wav.declared:
        raise WavFormatError(
            f"{path}: holds {len(data)} bytes of audio, its header declares "
            f"{wav.declared}: the file is cut short (still being copied?)")
    # A file cut off mid-sample (a copy or download that stopped) loses the half sample.
    usable = len(data) - len(data) % (2 * channels)
    return np.frombuffer(data, dtype="<i2", count=usable // 2).astype(np.int16)


@dataclass(frozen=True)
class Wav:
    """What :func:`parse_wav` found: the format, and the audio as it is in the file."""

    rate: int
    bits: int
    channels: int
    data: bytes
    #: the audio bytes its header declares; None when a streaming writer left it open
    declared: int | None


def parse_wav(raw: bytes, name: str = "file") -> Wav:
    """The integer PCM audio of a RIFF WAVE file (plain or extensible header); anything
    else is a :class:`WavFormatError` that says what it is.

    Written for what tools outside the project make: the RIFF size is not trusted (a
    streaming writer leaves it 0), chunks before the audio (LIST, fact) are skipped with
    their padding, a data size of 0 with audio after it (not another chunk) or of
    0xFFFFFFFF (a pipe's "unknown") means "to the end of the file", and what follows the
    audio is ignored."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        known = {b"RIFX": "a big-endian RIFX file", b"RF64": "an RF64 file"}
        what = known.get(raw[:4], "no RIFF WAVE header")
        raise WavFormatError(f"{name}: not a PCM WAV file ({what})")
    fmt: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        body_at = pos + 8
        if chunk == b"fmt ":
            fmt = raw[body_at : body_at + size]
        elif chunk == b"data":
            if fmt is None:
                raise WavFormatError(f"{name}: not a PCM WAV file (its audio comes before "
                                     "its format)")
            rate, bits, nch = _pcm_format(fmt, name)
            if size == _UNKNOWN_SIZE or (size == 0 and not _chunk_at(raw, body_at)
                                         and len(raw) > body_at):
                return Wav(rate, bits, nch, raw[body_at:], None)
            return Wav(rate, bits, nch, raw[body_at : body_at + size], size)
        pos = body_at + size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise WavFormatError(f"{name}: not a PCM WAV file (no format chunk)")
    raise WavFormatError(f"{name}: not a PCM WAV file (no audio: the data chunk is missing)")


def _chunk_at(raw: bytes, pos: int) -> bool:
    """Whether a chunk header (four printable characters, a size that fits) starts at
    ``pos``: after an empty data chunk, metadata (a LIST chunk), not a streaming writer's
    audio."""
    ident = raw[pos : pos + 4]
    size = int.from_bytes(raw[pos + 4 : pos + 8], "little")
    return (len(ident) == 4 and all(0x20 <= b < 0x7F for b in ident)
            and pos + 8 + size <= len(raw) + 1)


def _pcm_format(fmt: bytes, name: str) -> tuple[int, int, int]:
    """Rate, bits and channels of a format chunk whose samples are integer PCM."""
    if len(fmt) < 16:
        raise WavFormatError(f"{name}: not a PCM WAV file (a format chunk of {len(fmt)} bytes)")
    tag = int.from_bytes(fmt[0:2], "little")
    nch = int.from_bytes(fmt[2:4], "little")
    rate = int.from_bytes(fmt[4:8], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise WavFormatError(f"{name}: not a PCM WAV file (an extensible format chunk "
                                 f"of {len(fmt)} bytes)")
        valid = int.from_bytes(fmt[18:20], "little")
        sub = fmt[24:40]
        if sub[2:] != _PCM_GUID_TAIL or int.from_bytes(sub[:2], "little") != _PCM:
            raise WavFormatError(f"{name}: extensible WAV whose samples are not integer "
                                 f"PCM (subformat {sub.hex()})")
        if valid not in (0, bits):
            raise WavFormatError(f"{name}: {valid} valid bits in {bits}-bit samples; "
                                 "expected 16-bit")
    elif tag != _PCM:
        what = _FORMATS.get(tag, f"format {tag}")
        raise WavFormatError(f"{name}: not a PCM WAV file ({what}); expected 16-bit PCM")
    return rate, bits, nch


#: WAVE format tags: PCM, and WAVE_FORMAT_EXTENSIBLE with the GUID of its PCM subformat
#: after the format code
_PCM = 1
_EXTENSIBLE = 0xFFFE
_PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_FORMATS = {3: "32-bit float", 6: "A-law", 7: "µ-law", 2: "ADPCM", 0x11: "IMA ADPCM",
            0x55: "MP3"}
#: the data size a streaming writer (ffmpeg to a pipe) leaves when it cannot go back
_UNKNOWN_SIZE = 0xFFFFFFFF


def write_slin(path: str | Path, samples: Samples | bytes, *, channels: int = 1) -> None:
    """Write int16 samples (or slin bytes) as an 8 kHz 16-bit WAV file."""
    data = samples if isinstance(samples, bytes) else np.asarray(samples, "<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(data)
