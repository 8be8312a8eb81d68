"""Voice activity per channel: webrtcvad gated by the line's own noise floor.

webrtcvad alone keeps calling steady line noise "speech" for seconds after a talker stops
(modes 0-2 especially), which ruins end-of-message detection, so a frame counts as speech
only when webrtcvad says so *and* its level is ``margin_db`` above a noise floor tracked on
the non-speech frames of the same line (follows the level down at once, rises slowly).
Runs of speech frames give START after ``start_ms`` and runs of non-speech give END after
``end_ms``. The engine runs this for every channel every 20 ms, so the levels are computed
for the whole batch at once by :func:`frame_levels_dbfs` and :meth:`VoiceActivity.update`
is one webrtcvad call and a few float comparisons, with no numpy.
"""

from __future__ import annotations

import enum
import math
from functools import partial

import _webrtcvad  # the C module behind webrtcvad.Vad (see VoiceActivity.__init__)
import numpy as np
import webrtcvad

from appliance.media.frame import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, SAMPLES_PER_FRAME

FLOOR_DBFS = -120.0
"""Level reported for digital silence (an all-zero frame), instead of -inf."""

SILENCE_DBFS = -70.0
"""At or below this a frame is codec idle, never speech: A-law idle decodes to ±8, which
is -72 dBFS, and no line carries speech this quiet. Such frames do not move the floor, so a
stretch of digital silence cannot drag the gate down under the real line noise."""

_FULL_SCALE_POWER = 32768.0**2  # mean square of a full-scale square wave: 0 dBFS
_MIN_POWER = _FULL_SCALE_POWER * 10.0 ** (FLOOR_DBFS / 10.0)

# How fast the floor may climb on non-speech frames louder than it. Slow enough that the
# odd loud frame webrtcvad rejects inside speech cannot lift the floor into the speech
# (0.05 dB a frame is 2.5 dB/s), fast enough to follow a line that gets noisier.
_FLOOR_RISE_DB = 0.05
# webrtcvad (mode 3 too) calls loud steady noise speech, and then the floor above never
# climbs: a line whose noise rose 30 dB after a message kept the take going to its 180 s
# limit. So the floor is also never below the quietest frame of the last few seconds: no
# talker speaks for that long without a frame near the line's own noise, and steady noise
# has nothing quieter. Kept as the minima of _MIN_BLOCKS blocks of _MIN_BLOCK_FRAMES.
_MIN_BLOCK_FRAMES = 100  # 2 s
_MIN_BLOCKS = 3


def frame_levels_dbfs(block: np.ndarray) -> np.ndarray:
    """RMS level of each row of an ``(N, 160)`` int16 block, in dBFS, without its DC.

    A full-scale sine is -3.01 dBFS; an all-zero frame, or a constant one, is
    :data:`FLOOR_DBFS`. The offset an analog port adds is no sound: counted as level, 1 %
    of full scale held quiet speech under the gate (a message taken for empty). One pass
    over the whole batch costs about what a single per-frame numpy call would.
    """
    if block.ndim != 2:
        raise ValueError(f"expected an (N, samples) block of frames, got shape {block.shape}")
    x = block.astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    power = np.einsum("ij,ij->i", x, x) / np.float32(block.shape[1])
    return 10.0 * np.log10(np.maximum(power.astype(np.float64) / _FULL_SCALE_POWER, 1e-12))


def _pad(frame: bytes) -> bytes:
    """webrtcvad takes only whole frames; the last one of a stream may come short."""
    return frame[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0")


class SpeechEvent(enum.Enum):
    START = "start"
    END = "end"


class VoiceActivity:
    """Speech start/end detector for one channel, fed one 20 ms frame at a time.

    ``mode`` is webrtcvad's aggressiveness (0-3); ``start_ms`` of consecutive speech frames
    raise START, ``end_ms`` of consecutive non-speech frames after that raise END (voicemail
    uses 3000). ``margin_db`` is how far above the noise floor a frame must be to count.
    """

    in_speech: bool
    noise_floor_dbfs: float
    speech_frames: int

    def __init__(
        self, mode: int = 3, start_ms: int = 60, end_ms: int = 800, margin_db: float = 9.0
    ) -> None:
        if not 0 <= mode <= 3:
            raise ValueError(f"webrtcvad mode must be 0-3, got {mode}")
        self._vad = webrtcvad.Vad(mode)
        # Vad.is_speech is a Python wrapper that only recomputes the length and checks it;
        # for ≥ 600 channels every 20 ms, call the C function it wraps directly.
        self._is_speech = partial(_webrtcvad.process, self._vad._vad, SAMPLE_RATE)
        self.start_frames = max(1, math.ceil(start_ms / FRAME_MS))
        self.end_frames = max(1, math.ceil(end_ms / FRAME_MS))
        self.margin_db = margin_db
        self.in_speech = False
        # Until the first frame above codec idle arrives the floor is unknown; that frame
        # sets it (then it follows the level down at once), so calibration takes no time.
        self.calibrated = False
        self.noise_floor_dbfs = SILENCE_DBFS
        self.speech_frames = 0
        self._run = 0  # consecutive frames disagreeing with the current state
        self._block_min = math.inf  # the quietest frame of the block under way
        self._block_left = _MIN_BLOCK_FRAMES
        self._block_mins: list[float] = []  # of the last _MIN_BLOCKS blocks

    def update(self, frame: bytes, level_dbfs: float) -> SpeechEvent | None:
        """Judge one 320-byte frame whose level came from :func:`frame_levels_dbfs`."""
        speech = False
        if level_dbfs < self._block_min:
            self._block_min = level_dbfs
        self._block_left -= 1
        if not self._block_left:
            self._end_block()
        if level_dbfs > SILENCE_DBFS:
            floor = self.noise_floor_dbfs
            if not self.calibrated:
                self.calibrated = True
                floor = level_dbfs
            # The cheap gate first: most frames on most channels are line noise, and then
            # webrtcvad need not run at all.
            if level_dbfs >= floor + self.margin_db and self._is_speech(
                frame if len(frame) == FRAME_BYTES else _pad(frame), SAMPLES_PER_FRAME
            ):
                speech = True
            elif level_dbfs < floor:
                floor = level_dbfs
            else:
                floor = min(level_dbfs, floor + _FLOOR_RISE_DB)
            self.noise_floor_dbfs = floor

        if speech:
            self.speech_frames += 1
        if speech != self.in_speech:
            self._run += 1
            if self._run >= (self.end_frames if self.in_speech else self.start_frames):
                self._run = 0
                self.in_speech = speech
                return SpeechEvent.START if speech else SpeechEvent.END
        else:
            self._run = 0
        return None

    def _end_block(self) -> None:
        mins = self._block_mins
        mins.append(self._block_min)
        if len(mins) > _MIN_BLOCKS:
            del mins[0]
        self._block_min, self._block_left = math.inf, _MIN_BLOCK_FRAMES
        lowest = min(mins)
        if len(mins) == _MIN_BLOCKS and lowest > self.noise_floor_dbfs and self.calibrated:
            self.noise_floor_dbfs = lowest

    def reset(self) -> None:
        """Forget speech state (keep the floor: it is the same line)."""
        self.in_speech = False
        self._run = 0
