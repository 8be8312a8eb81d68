"""Speech synthesis for recordings made ahead of a call, never during one: espeak-ng, then
sox to 8 kHz 16-bit mono with leading and trailing silence trimmed and the level set.

The prompt sets are made with it once and committed (``prompts/generate.py``); the box uses
it for what only exists as data, such as a salesperson's name, and keeps the result as a
file that a human recording can replace. Output is not dithered, so the same text and voice
always give the same bytes. Needs the Debian packages espeak-ng and sox.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Final

DEFAULT_SPEED: Final = 150  # words per minute
#: the espeak-ng voice of each prompt language (Debian's plain ``cmn`` garbles characters)
VOICES: Final = {"zh": "cmn-latn-pinyin", "yue": "yue", "en": "en"}


def synthesize(text: str, voice: str, out: Path, speed: int = DEFAULT_SPEED) -> Path:
    """Say ``text`` with espeak-ng ``voice`` into the WAV file ``out``; returns ``out``.
    Raises ValueError for empty text and CalledProcessError when a tool fails."""
    if not text.strip():
        raise ValueError("nothing to say: empty text")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
                       check=True, capture_output=True)
        subprocess.run(
            ["sox", "-D", str(raw), "-r", "8000", "-b", "16", "-c", "1", "-e", "signed-integer",
             str(out), "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02",
             "0.5%", "reverse", "gain", "-n", "-6"],
            check=True, capture_output=True,
        )
    return out


__all__ = ["DEFAULT_SPEED", "VOICES", "synthesize"]
