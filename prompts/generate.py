#!/usr/bin/env python3
"""Regenerate the prompt WAVs from manifest.json with espeak-ng and sox.

Each prompt becomes ``prompts/<lang>/<name>.wav``: 8 kHz, 16-bit, mono, leading and
trailing silence trimmed. The generated files are committed, so the box itself needs no
speech synthesis; any file can later be replaced by a human recording. A language may set
its espeak-ng ``speed`` (words per minute, default 150) next to its ``voice``; a prompt
is its text, or ``{"text", "voice"}`` when it must be said in another voice than its set's
(the language menu offers each language in that language's own voice). Output is
not dithered, so the same manifest always gives the same bytes and regenerating leaves
unchanged prompts unchanged in git. Needs the Debian packages espeak-ng and sox.
Usage: ``python3 prompts/generate.py [LANG ...]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from anywhere: find the appliance

from appliance.media.tts import DEFAULT_SPEED, synthesize  # noqa: E402


def main(langs: list[str]) -> None:
    manifest = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
    for lang, entry in manifest.items():
        if langs and lang not in langs:
            continue
        folder = HERE / lang
        folder.mkdir(exist_ok=True)
        for name, spec in entry["prompts"].items():
            text, voice = ((spec["text"], spec["voice"]) if isinstance(spec, dict)
                           else (spec, entry["voice"]))
            synthesize(text, voice, folder / f"{name}.wav", entry.get("speed", DEFAULT_SPEED))
            print(f"{lang}/{name}.wav  {text}")


if __name__ == "__main__":
    main(sys.argv[1:])
