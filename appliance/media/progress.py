"""Call-progress analysis: what an outbound call's audio says after dialing ended.

An analog FXO port marks a call UP as soon as dialing ends, so the engine listens to the
line itself. Each 20 ms frame is classed as *tone* (most of its energy within 450 ± 25 Hz,
the only frequency China's exchanges use), *voice* (energy above the line's noise floor
that is not such a tone) or *quiet*. Tone frames are grouped into bursts and the on/off
durations matched against the China cadences (ringback 1/4 s, busy 0.35/0.35 s, congestion
0.7/0.7 s, vacant number 0.1/0.1 s steps) with tolerances wide enough for real lines;
sustained voice means the call was answered, even after ringback. A burst only counts if
its level is steady and the pauses around it are quiet, which is what keeps speech — whose
vowels can put most of a frame's energy near 450 Hz — from ever looking like busy.
:class:`CallProgress` is the streaming form the engine feeds frame by frame;
:func:`detect_progress` and :func:`detect_progress_file` run it over a whole recording.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.media.frame import FRAME_MS, SAMPLE_RATE, SAMPLES_PER_FRAME
from appliance.media.wavio import read_slin


class Outcome(enum.Enum):
    VOICE = "voice"  # answered: someone (or a machine) is talking
    BUSY = "busy"
    CONGESTION = "congestion"  # also vacant number, and dial tone back after dialing
    RINGBACK = "ringback"  # rang and nobody answered before the audio ended
    SILENCE = "silence"  # nothing at all


# Probe frequencies 12.5 Hz apart across 450 ± 25 Hz: a tone anywhere in that band is
# within 6.25 Hz of one, where a 160-sample window still captures > 95 % of its energy.
_PROBES_HZ = (425.0, 437.5, 450.0, 462.5, 475.0)

TONE_FRACTION = 0.7
"""A tone frame has at least this share of its energy in one probe's band."""
TONE_HOLD_FRACTION = 0.55
"""The share that keeps a tone going once it has started: a quiet tone in line noise
wavers around TONE_FRACTION from frame to frame, and a ring must not fall apart into
pieces (they matched the vacant-number steps) or into "quiet" frames."""
VOICE_FRACTION = 0.5
"""A frame with more than this share near 450 Hz is never voice (e.g. a tone's edge)."""
MIN_TONE_DBFS = -50.0  # the -10 dBm0 tones arrive near -16 dBFS; allow 30 dB of line loss
MIN_VOICE_DBFS = -50.0
VOICE_MARGIN_DB = 10.0  # above the noise floor
BURST_STEADY_DB = 4.0  # a tone burst's level varies less than this (speech varies far more)
_FLOOR_RISE_DB = 0.05  # per frame; see vad.py for why the floor rises slowly
_SILENT_DBFS = -120.0

# Cadence windows in ms, (on min, on max, off min, off max). The nominal values ±10 %, plus
# two frames for the partial frames at each edge of a burst, plus real-line slack; busy and
# congestion meet at 0.5 s, halfway between 0.35 and 0.7.
_BUSY = (200, 500, 200, 500)
_CONGESTION = (520, 1000, 520, 1000)
_SHORT = (40, 200, 40, 200)  # the 0.1 s steps of the vacant-number tone
_RINGBACK_ON = (600, 1500)
_RINGBACK_OFF = (2500, 6000)
_CONTINUOUS_MS = 2500  # one burst this long is dial tone (or a steady tone): the call failed

_BUSY_CYCLES = 2  # consecutive matching on/off cycles before deciding
_CONGESTION_CYCLES = 2
_SHORT_CYCLES = 3

_VOICE_WINDOW_MS = 1000
_BRIEF_VOICE_MS = 100  # voice that, with nothing after it, still counts as an answer
_BRIEF_ANSWER_QUIET_MS = 1500  # ... once this much quiet followed it (no ring heard)


def _frames(ms: float) -> int:
    return math.ceil(ms / FRAME_MS)


def _probe_basis() -> np.ndarray:
    """(160, 2 * probes) matrix whose column pairs are orthonormal cos/sin bases.

    Projecting a frame on a pair gives exactly the energy of its component in that 2-D
    subspace, so the tone fraction never exceeds 1, whatever the probe's cycle count.
    """
    t = np.arange(SAMPLES_PER_FRAME) / SAMPLE_RATE
    cols = []
    for hz in _PROBES_HZ:
        pair = np.stack([np.cos(2 * np.pi * hz * t), np.sin(2 * np.pi * hz * t)], axis=1)
        q, _ = np.linalg.qr(pair)
        cols.append(q)
    return np.concatenate(cols, axis=1)


_BASIS = _probe_basis()


def _hum_basis() -> np.ndarray:
    """(160, 7) orthonormal columns spanning DC and 50, 100 and 150 Hz (mains hum and its
    first harmonics; 160 samples hold whole cycles of each)."""
    t = np.arange(SAMPLES_PER_FRAME) / SAMPLE_RATE
    cols = [np.ones_like(t)]
    for hz in (50.0, 100.0, 150.0):
        cols += [np.cos(2 * np.pi * hz * t), np.sin(2 * np.pi * hz * t)]
    q, _ = np.linalg.qr(np.stack(cols, axis=1))
    return q


_HUM = _hum_basis()
_FULL_SCALE_ENERGY = SAMPLES_PER_FRAME * 32768.0**2


@dataclass
class _Burst:
    frames: int = 0
    cut: bool = False  # began with the audio: its true length is unknown, maybe longer
    before: int = 0  # frames of quiet since the burst before it (0: the first burst)
    lo: float = math.inf  # level range of the burst's frames after the first
    hi: float = -math.inf

    @property
    def ms(self) -> int:
        return self.frames * FRAME_MS

    @property
    def steady(self) -> bool:
        return self.frames < 3 or self.hi - self.lo <= BURST_STEADY_DB


def _within(value: int, lo: int, hi: int) -> bool:
    return lo <= value <= hi


class CallProgress:
    """Streaming call-progress analyzer for one outbound call.

    Feed it every 20 ms frame from the moment dialing ended. :meth:`feed` returns ``None``
    until it is sure, then the :class:`Outcome` (and keeps returning it). Busy, congestion
    and voice are decided as soon as they are heard; silence after ``silence_seconds`` of
    nothing at all; ringback with no answer when the ringing stops for ``silence_seconds``
    or the analysis reaches ``max_seconds``. :meth:`finish` decides with what was seen when
    the audio ends first.
    """

    def __init__(
        self, *, max_seconds: float = 60.0, silence_seconds: float = 10.0, voice_ms: int = 300
    ) -> None:
        self.max_frames = _frames(max_seconds * 1000)
        self.silence_frames = _frames(silence_seconds * 1000)
        self.voice_frames = _frames(voice_ms)
        self.outcome: Outcome | None = None
        self.frames = 0
        self.noise_floor_dbfs = math.nan  # set by the first frame that is not tone-like
        self.rings = 0  # ringback bursts confirmed by their long off time
        self._ring_off = _frames(_RINGBACK_OFF[1])  # the pause between rings, once measured
        self._burst = _Burst()
        self._heard_tone = False
        self._last_burst: _Burst | None = None  # the latest steady burst, awaiting its off time
        self._gap = 0  # frames since the last tone frame
        self._gap_voice = False  # voice heard since the last tone frame
        self._cycles = {"busy": 0, "congestion": 0, "short": 0}
        self._quiet = 0  # frames since anything (tone or voice) was heard
        self._window: deque[bool] = deque([False] * _frames(_VOICE_WINDOW_MS))
        self._voiced = 0  # voice frames in the window
        self._voice_run = 0  # consecutive voice frames up to now
        self._word_since_tone = 0  # the longest such run since the last tone burst began
        self._prev_tone = False
        self._pending_voice = False  # previous frame's voice candidacy, held one frame
        self._prev_prev_tone = False

    # -- per frame -------------------------------------------------------------------------

    def feed(self, frame: np.ndarray | bytes) -> Outcome | None:
        """Analyse one 20 ms frame (160 int16 samples or 320 bytes of slin)."""
        if self.outcome is not None:
            return self.outcome
        x = np.frombuffer(frame, dtype="<i2") if isinstance(frame, bytes) else frame
        x = np.asarray(x, dtype=np.float64).ravel()
        if len(x) != SAMPLES_PER_FRAME:
            # The last frame of a stream may come short; anything longer is a caller's bug.
            if len(x) > SAMPLES_PER_FRAME:
                raise ValueError(f"a frame is {SAMPLES_PER_FRAME} samples, got {len(x)}")
            x = np.concatenate([x, np.zeros(SAMPLES_PER_FRAME - len(x))])
        # Below the telephone band (300-3400 Hz) there is nothing to hear, only what an
        # analog port adds: a DC offset and mains hum. As energy they fill every quiet
        # frame and shrink the 450 Hz share of every tone frame; 0.6 % of full scale of DC
        # made ringing, busy and congestion all "silence", and -50 dBFS of hum broke a
        # quiet ring into pieces that looked like the vacant-number tone.
        x = x - _HUM @ (_HUM.T @ x)
        energy = float(x @ x)
        if energy <= 0.0:
            level, fraction = _SILENT_DBFS, 0.0
        else:
            # Ten projections are summed in plain Python: on arrays this small each numpy
            # call costs more than the arithmetic.
            p = (x @ _BASIS).tolist()
            band = max(p[i] * p[i] + p[i + 1] * p[i + 1] for i in range(0, len(p), 2))
            level = 10.0 * math.log10(energy / _FULL_SCALE_ENERGY)
            fraction = band / energy
        self.frames += 1
        tone = level >= MIN_TONE_DBFS and (
            fraction >= TONE_FRACTION or (self._prev_tone and fraction >= TONE_HOLD_FRACTION))
        self._track_floor(level, tone, fraction)
        voice_candidate = (
            not tone
            and fraction <= VOICE_FRACTION
            and level >= MIN_VOICE_DBFS
            and level >= self.noise_floor_dbfs + VOICE_MARGIN_DB
        )
        # A frame that a tone burst starts or ends in is half tone, half quiet: loud and not
        # tonal. Judge each frame one frame late so such edge frames are never voice.
        voice = self._pending_voice and not self._prev_prev_tone and not tone
        self._pending_voice = voice_candidate
        self._prev_prev_tone = self._prev_tone
        self._prev_tone = tone

        self._count_voice(voice)
        if tone:
            self._on_tone(level)
        else:
            self._on_no_tone()
        if tone or voice or voice_candidate:
            self._quiet = 0
        else:
            self._quiet += 1

        if self.outcome is None:
            self.outcome = self._decide_live()
        return self.outcome

    def _track_floor(self, level: float, tone: bool, fraction: float) -> None:
        if tone or level <= _SILENT_DBFS or fraction > VOICE_FRACTION:
            return
        floor = self.noise_floor_dbfs
        if math.isnan(floor) or level < floor:
            self.noise_floor_dbfs = level
        elif level < floor + VOICE_MARGIN_DB:
            self.noise_floor_dbfs = min(level, floor + _FLOOR_RISE_DB)

    def _count_voice(self, voice: bool) -> None:
        self._voiced += voice - self._window.popleft()
        self._window.append(voice)
        if voice:
            self._gap_voice = True
            self._voice_run += 1
            if self._voice_run > self._word_since_tone:
                self._word_since_tone = self._voice_run
        else:
            self._voice_run = 0

    def _on_tone(self, level: float) -> None:
        b = self._burst
        if b.frames == 0:
            # The quiet before the first burst is the exchange's delay after dialing, not
            # a cadence's off time.
            b.cut, b.before = self.frames == 1, self._gap if self._heard_tone else 0
            self._heard_tone = True
            self._start_burst()
            self._word_since_tone = 0
        else:  # the first frame may be partial: leave it out of the range
            b.lo, b.hi = min(b.lo, level), max(b.hi, level)
        b.frames += 1
        self._gap = 0
        self._gap_voice = False
        if b.ms >= _CONTINUOUS_MS and b.steady:
            self.outcome = Outcome.CONGESTION

    def _start_burst(self) -> None:
        """A burst begins: the previous burst's off time is now known, so match the cycle."""
        prev, off = self._last_burst, self._gap * FRAME_MS
        if (prev is not None and not self._gap_voice and _within(prev.ms, *_RINGBACK_ON)
                and _within(off, *_RINGBACK_OFF)):
            self._ring_off = self._gap  # this exchange's pause between rings
        kind = None
        if prev is not None and not self._gap_voice:
            for name, (on_lo, on_hi, off_lo, off_hi) in (
                ("busy", _BUSY),
                ("congestion", _CONGESTION),
                ("short", _SHORT),
            ):
                if _within(prev.ms, on_lo, on_hi) and _within(off, off_lo, off_hi):
                    kind = name
        for name in self._cycles:
            if name == kind:
                self._cycles[name] += 1
            elif not (name == "short" and kind == "busy"):
                # The vacant tone's 0.4/0.4 step looks like busy; let it pass its short steps.
                self._cycles[name] = 0

    def _on_no_tone(self) -> None:
        b = self._burst
        if b.frames:  # a burst just ended
            self._last_burst = b if b.steady and b.frames >= 2 else None
            if self._last_burst is None:
                self._cycles = dict.fromkeys(self._cycles, 0)
            self._burst = _Burst()
        self._gap += 1
        last = self._last_burst
        if last is None:
            return
        if self._gap_voice:
            # Talk between bursts: whatever the bursts were, this is not a tone cadence.
            self._last_burst = None
            self._cycles = dict.fromkeys(self._cycles, 0)
        elif self._gap == _frames(_RINGBACK_OFF[0]) and _within(last.ms, *_RINGBACK_ON):
            self.rings += 1

    def _decide_live(self) -> Outcome | None:
        if self._voiced >= self.voice_frames:
            return Outcome.VOICE
        # (The brief answer is a voice decision too: a voice_ms beyond the window, which
        # switches that off, switches it off.)
        if (self._word_since_tone >= _frames(_BRIEF_VOICE_MS)
                and self.voice_frames <= len(self._window) and self._brief_answer_over()):
            return Outcome.VOICE
        if self._cycles["busy"] >= _BUSY_CYCLES:
            return Outcome.BUSY
        if self._cycles["congestion"] >= _CONGESTION_CYCLES:
            return Outcome.CONGESTION
        if self._cycles["short"] >= _SHORT_CYCLES:
            return Outcome.CONGESTION  # vacant number
        # Ringing stopped and nothing followed, or nothing at all: wait out the timer.
        quiet_needed = self.silence_frames
        if self.rings:  # never mistake the 4 s gap between rings for the end of ringing
            quiet_needed = max(quiet_needed, _frames(_RINGBACK_OFF[1]) + 1)
        if self._quiet >= quiet_needed:
            return self._best_guess()
        if self.frames >= self.max_frames:
            return self._best_guess()
        return None

    def _brief_answer_over(self) -> bool:
        """A word too short to be sure of ("喂?", 250 ms) was the answer once nothing but
        quiet follows it for a while, and, if it rang before, once the next ring is
        overdue: what the silence timer would decide 10 s later, decided now."""
        if self._quiet < _frames(_BRIEF_ANSWER_QUIET_MS):
            return False
        # 30 % and a frame of slack on the pause this exchange was heard to make: each
        # pause may be 10 % off on its own, so one can be 22 % longer than the last.
        return not self.rings or self._gap > self._ring_off * 1.3 + 1

    def _best_guess(self) -> Outcome:
        """Outcome from incomplete evidence: the audio ended or a timer ran out."""
        # A word too short to call sustained ("喂?") that no tone followed still means
        # someone picked up, even after ringback. A word, not clicks: the frames must
        # follow each other (a crackling line's clicks in a ring gap answered the call).
        if self._word_since_tone >= _frames(_BRIEF_VOICE_MS):
            return Outcome.VOICE
        # The latest cadence first: ringing that turned busy (the callee rejected the
        # call) is busy, whatever rang before.
        if self._cycles["busy"]:
            return Outcome.BUSY
        if self._cycles["congestion"]:
            return Outcome.CONGESTION
        burst = self._burst
        if burst.frames >= 2 and burst.steady:
            # The audio ends inside a tone: a ring cut off, or a tone longer than any ring
            # (dial tone after the far end went, a steady tone): the call failed.
            if burst.ms > _RINGBACK_ON[1]:
                return Outcome.CONGESTION
            if self.rings or burst.ms >= _RINGBACK_ON[0]:
                return Outcome.RINGBACK
        if self.rings:
            return Outcome.RINGBACK
        last, off = self._last_burst, self._gap * FRAME_MS
        ending = burst.frames >= 2 and burst.steady  # the audio ends inside this burst
        if ending:
            last, off = burst, 0
        if last is None:
            return Outcome.SILENCE
        # One burst, and the quiet around it: of the cadences whose on time it fits, whose
        # burst before it is not missing and whose next one is not yet overdue, the one
        # whose on time is nearest. A burst the audio began or ended in may have been
        # longer (the tail of a ring).
        before = last.before * FRAME_MS
        fits = [(abs(last.ms - nominal), outcome)
                for (on_lo, on_hi, off_hi), nominal, outcome in (
                    ((*_BUSY[:2], _BUSY[3]), 350, Outcome.BUSY),
                    ((*_CONGESTION[:2], _CONGESTION[3]), 700, Outcome.CONGESTION),
                    ((*_RINGBACK_ON, _RINGBACK_OFF[1]), 1000, Outcome.RINGBACK))
                if (last.ms <= on_hi if last.cut or ending else _within(last.ms, on_lo, on_hi))
                and off <= off_hi and before <= off_hi]
        if fits:
            return min(fits, key=lambda fit: fit[0])[1]
        if last.cut and last.ms <= _RINGBACK_ON[1]:
            return Outcome.RINGBACK  # a ring's tail, and the ringing stopped
        return Outcome.SILENCE

    def finish(self) -> Outcome:
        """The audio ended (line closed or timeout): the outcome from what was heard."""
        if self.outcome is None:
            self.outcome = self._best_guess()
        return self.outcome

    @property
    def tone(self) -> bool:
        """The last frame fed was a tone's (the engine keeps the audio after the last
        ring for the recording)."""
        return self._prev_tone

    @property
    def ringing(self) -> bool:
        """Ringback has been heard (the engine may show "ringing")."""
        return self.rings > 0


def detect_progress(
    samples: np.ndarray, *, max_seconds: float = 60.0, silence_seconds: float = 10.0
) -> Outcome:
    """Outcome of a whole recording that starts where dialing ended."""
    x = np.asarray(samples, dtype=np.int16)
    analyzer = CallProgress(max_seconds=max_seconds, silence_seconds=silence_seconds)
    n = len(x) // SAMPLES_PER_FRAME
    frames = x[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME)
    for frame in frames:
        if analyzer.feed(frame) is not None:
            break
    return analyzer.finish()


def detect_progress_file(
    path: str | Path, *, max_seconds: float = 60.0, silence_seconds: float = 10.0
) -> Outcome:
    """:func:`detect_progress` of an 8 kHz 16-bit mono WAV file (else WavFormatError, also
    for a file cut short of the audio its header declares: its end would read as silence)."""
    return detect_progress(
        read_slin(path, complete=True), max_seconds=max_seconds, silence_seconds=silence_seconds
    )
