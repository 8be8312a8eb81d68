"""A recorded message after the fact: where its speech is, how much there is, the played copy.

The raw recording is what the caller's line carried from the beep to the end, kept as it
is. For playback a copy is cut from a little before the first speech to a little after the
last, so a salesperson does not sit through seconds of line noise. Speech is judged frame
by frame with the engine's own detector (webrtcvad gated by the noise floor,
:class:`~appliance.media.vad.VoiceActivity`), in two passes: the first only learns the
line's noise floor, so that a caller who starts talking at the beep is not measured
against their own voice. A message with less than :data:`EMPTY_BELOW_SECONDS` of speech is
"empty" (a hang-up after the beep, a cough): kept, but flagged for triage.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.media.frame import FRAME_MS, SAMPLE_RATE, SAMPLES_PER_FRAME
from appliance.media.vad import VoiceActivity, frame_levels_dbfs
from appliance.media.wavio import read_slin

#: below this much speech a message is flagged empty
EMPTY_BELOW_SECONDS = 1.0
#: kept before the first speech frame: the detector needs a few frames to rise, and a
#: word's soft onset sits under the gate
LEAD_FRAMES = 15  # 300 ms
#: kept after the last speech frame: a trailing syllable fades under the gate
TAIL_FRAMES = 25  # 500 ms
#: the end of a message finished by a key holds the start of that key's tone (the detector
#: needs 25-40 ms of it, then the tick ends the recording): never speech, never played
KEY_TONE_FRAMES = 5  # 100 ms


@dataclass(frozen=True, slots=True)
class Analysis:
    """Frame counts of one message; ``first``/``last`` index its first and last speech
    frame (None when it holds no speech); frames from ``usable`` on are the stop key's."""

    frames: int
    speech_frames: int
    first: int | None
    last: int | None
    usable: int

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_MS / 1000

    @property
    def speech_seconds(self) -> float:
        return self.speech_frames * FRAME_MS / 1000

    @property
    def empty(self) -> bool:
        return self.speech_seconds < EMPTY_BELOW_SECONDS

    def played_span(self) -> tuple[int, int]:
        """The frames ``[start, end)`` of the played copy: the speech with its margins, or
        the whole recording when there is no speech to cut to (someone may still want to
        hear what the line carried)."""
        if self.first is None or self.last is None:
            return 0, self.usable
        return max(0, self.first - LEAD_FRAMES), min(self.usable, self.last + 1 + TAIL_FRAMES)


def _frames(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // SAMPLES_PER_FRAME
    return np.ascontiguousarray(samples[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME))


def analyse(samples: np.ndarray, *, ended_by_key: bool = False) -> Analysis:
    """Speech frames of a mono 8 kHz message (a partial last frame is ignored)."""
    whole = _frames(np.asarray(samples, dtype="<i2"))
    usable = max(0, len(whole) - KEY_TONE_FRAMES) if ended_by_key else len(whole)
    block = whole[:usable]
    if not len(block):
        return Analysis(len(whole), 0, None, None, usable)
    levels = frame_levels_dbfs(block).tolist()
    rows = [row.tobytes() for row in block]
    learner = VoiceActivity()
    for frame, level in zip(rows, levels, strict=True):
        learner.update(frame, level)
    vad = VoiceActivity()
    vad.calibrated = learner.calibrated
    vad.noise_floor_dbfs = learner.noise_floor_dbfs
    speech: list[int] = []
    for i, (frame, level) in enumerate(zip(rows, levels, strict=True)):
        before = vad.speech_frames
        vad.update(frame, level)
        if vad.speech_frames != before:
            speech.append(i)
    if not speech:
        return Analysis(len(whole), 0, None, None, usable)
    return Analysis(len(whole), len(speech), speech[0], speech[-1], usable)


def analyse_file(path: Path, *, ended_by_key: bool = False) -> tuple[Analysis, np.ndarray]:
    """Read and analyse a message file; returns the analysis and the samples."""
    samples = read_slin(path)
    return analyse(samples, ended_by_key=ended_by_key), samples


def write_played_copy(samples: np.ndarray, analysis: Analysis, dest: Path) -> Path:
    """Write the trimmed copy of a message to ``dest`` (whole or not at all).

    Written beside ``dest`` under a name the engine's start-up recovery ignores, fsynced,
    then renamed: a crash leaves either no copy (the raw file is played instead) or a
    complete one.
    """
    start, end = analysis.played_span()
    pcm = np.asarray(samples, dtype="<i2")[start * SAMPLES_PER_FRAME: end * SAMPLES_PER_FRAME]
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "wb") as f:
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(pcm.tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return dest
