"""What a waiting caller hears: music on hold, and announcements of their place in the
queue and the expected wait, in their own language.

The hold tune is generated here (a slow pentatonic melody of soft sine notes), so it is
license-free and needs no file; it is made once and shared by every waiting call, like a
prompt. Announcements are lists of prompt names: fixed phrases from the prompt set around
numbers spoken by the IVR's grammar (:func:`appliance.ivr.speech.say`), so "you are number
3" is said correctly in Mandarin, Cantonese and English. The expected wait is the caller's
position times the queue's average handle time, shared among the seats that are staffed.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Final

import numpy as np

from appliance.ivr.speech import say
from appliance.media.frame import SAMPLE_RATE
from appliance.media.prompts import Prompt

HOLD_TUNE_NAME: Final = "acd_hold_tune"
# C major pentatonic, two octaves up from middle C: clear of 450 Hz (China's tones, so a
# caller's phone never takes the tune for busy or ringback) and never two notes at once
# (a single sine is never a DTMF pair).
_NOTES_HZ: Final = (523.25, 587.33, 659.25, 783.99, 880.0, 1046.5)
_MELODY: Final = (0, 2, 4, 3, 2, 1, 0, 2, 3, 4, 5, 4, 3, 2, 1, 0)
_NOTE_SECONDS: Final = 0.5
_LEVEL: Final = 0.08  # of full scale: about -22 dBFS, soft under an announcement
#: below this the expected wait is announced as "shortly"
SHORT_WAIT_SECONDS: Final = 60.0


@cache
def hold_tune() -> Prompt:
    """The music on hold: 8 s of melody that loops cleanly (starts and ends in silence)."""
    n = int(_NOTE_SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    # A raised-cosine envelope per note: no clicks between notes or at the loop point.
    env = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    notes = [np.sin(2 * np.pi * _NOTES_HZ[i] * t) * env for i in _MELODY]
    pcm = np.concatenate(notes) * _LEVEL * 32767
    return Prompt.from_samples(HOLD_TUNE_NAME, np.round(pcm).astype(np.int16))


def estimate_wait(position: int, staffed: int, handle_seconds: float) -> float:
    """Seconds until the caller at ``position`` (1 = next) is likely answered."""
    if position < 1:
        raise ValueError(f"position {position}: expected 1 or more")
    return position * handle_seconds / max(staffed, 1)


def announcement(lang: str, position: int, wait_seconds: float, *,
                 thanks: bool = False) -> list[str]:
    """The prompt names of one announcement: (thanks,) position, expected wait."""
    names = ["queue_thanks"] if thanks else []
    names += ["queue_position", *say(lang, "number", str(position)), "queue_position_end"]
    if wait_seconds < SHORT_WAIT_SECONDS:
        names.append("queue_wait_short")
    else:
        # Rounded up, and never "about one minute" for 60-119 s of expected wait.
        minutes = max(2, math.ceil(wait_seconds / 60))
        names += ["queue_wait", *say(lang, "number", str(minutes)), "queue_wait_end"]
    return names


__all__ = ["HOLD_TUNE_NAME", "SHORT_WAIT_SECONDS", "announcement", "estimate_wait",
           "hold_tune"]
