"""A recording an office already has (a WAV at any rate or channel count, an MP3 or an M4A
from a phone) turned into what a prompt must be: 8 kHz, 16-bit, mono WAV.

ffmpeg (Debian) decodes and resamples; its output carries no metadata and no encoder tag,
so the same upload always gives the same bytes. What cannot be decoded is refused with
ffmpeg's reason, and nothing is written where a prompt lives: the caller of
:func:`to_prompt_wav` checks the result (length, silence) and replaces the file whole.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Final

#: the kinds of recording accepted, by file extension
SUFFIXES: Final = (".wav", ".mp3", ".m4a")
TIMEOUT_S: Final = 60


class ConversionError(ValueError):
    """The upload is not a recording that can be made into a prompt (says why)."""


def to_prompt_wav(data: bytes, filename: str) -> bytes:
    """``data`` (named ``filename``) as an 8 kHz 16-bit mono WAV; ConversionError if it is
    not a WAV, MP3 or M4A recording ffmpeg can decode."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise ConversionError(f"{suffix or 'a file without an extension'} is not accepted: "
                              "give a WAV, MP3 or M4A recording")
    if not data:
        raise ConversionError("the file is empty")
    with tempfile.TemporaryDirectory(prefix="prompt-") as tmp:
        src, dst = Path(tmp) / f"upload{suffix}", Path(tmp) / "prompt.wav"
        src.write_bytes(data)
        try:
            done = subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), "-vn", "-map_metadata",
                 "-1", "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le", "-fflags", "+bitexact",
                 "-flags:a", "+bitexact", "-f", "wav", str(dst)],
                capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ConversionError(f"decoding took longer than {TIMEOUT_S} s") from None
        if done.returncode != 0 or not dst.is_file():
            reason = (done.stderr.strip().splitlines() or ["no audio found"])[-1]
            raise ConversionError(f"not a recording ffmpeg can decode: {reason[:200]}")
        return dst.read_bytes()


__all__ = ["SUFFIXES", "ConversionError", "to_prompt_wav"]
