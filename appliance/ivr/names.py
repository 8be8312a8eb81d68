"""Salespeople's names as recordings the IVR can play.

A name exists only as text in the book, and the box has no speech synthesis during calls,
so each name is synthesised once, ahead of its first use, into a small WAV per language
(Mandarin and Cantonese voices; an English caller hears the name said in Mandarin, as a
Chinese name is). A recording the office makes of the person saying their own name, saved
as ``<lang>/<code>.wav``, wins over the synthesised one. Synthesised files carry a hash of
the name and voice in their file name, so a renamed salesperson is said right the next
time without anyone clearing a cache.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Final

from appliance.media.tts import VOICES, synthesize

log = logging.getLogger(__name__)

#: the voice a name is said in, per caller language
NAME_VOICES: Final = {"zh": VOICES["zh"], "yue": VOICES["yue"], "en": VOICES["zh"]}


class NameRecordings:
    """Name recordings under ``folder`` (``<lang>/<code>.wav`` human, else synthesised)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def recorded(self, code: str, lang: str) -> Path:
        """Where a human recording of ``code``'s name in ``lang`` goes."""
        return self.folder / lang / f"{code}.wav"

    def get(self, code: str, name: str, lang: str) -> Path | None:
        """The recording to play for ``code`` called ``name`` to a caller in ``lang``
        (blocking the first time: run it off the loop); None when there is none to be had."""
        voice = NAME_VOICES.get(lang)
        if voice is None or not code.isalnum():
            return None
        human = self.recorded(code, lang)
        if human.is_file():
            return human
        if not name.strip():
            return None
        digest = hashlib.sha256(f"{voice}\n{name}".encode()).hexdigest()[:12]
        path = self.folder / lang / f"{code}.{digest}.tts.wav"
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.parent / f"{code}.{digest}.part.wav"  # sox picks the format by suffix
        try:
            synthesize(name, voice, partial)
            partial.replace(path)  # whole or not at all: a crash leaves no half file
        except (OSError, subprocess.CalledProcessError, ValueError) as exc:
            log.warning("name of salesperson %s (%s) could not be synthesised: %s", code,
                        lang, exc)
            partial.unlink(missing_ok=True)
            return None
        for old in path.parent.glob(f"{code}.*.tts.wav"):
            if old != path:
                old.unlink(missing_ok=True)  # the name before a rename
        return path


__all__ = ["NAME_VOICES", "NameRecordings"]
