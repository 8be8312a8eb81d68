"""Voice activity on real recorded speech (Asterisk prompts) in white line noise: start and
end events against where the speech really is, no speech on noise or digital silence, and
the noise floor calibrating itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.media.frame import FRAME_MS, SAMPLE_RATE, SAMPLES_PER_FRAME
from appliance.media.g711 import alaw_decode, alaw_encode
from appliance.media.vad import (
    FLOOR_DBFS,
    SpeechEvent,
    VoiceActivity,
    frame_levels_dbfs,
)
from appliance.media.wavio import read_slin

SOUNDS = Path("/usr/share/asterisk/sounds/en")
needs_sounds = pytest.mark.skipif(
    not SOUNDS.is_dir(), reason="asterisk-core-sounds-en-wav is not installed"
)

SPEECH_DBFS = -45.0  # where a prompt's own speech is taken to start and end


def white(n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 32768 * 10 ** (dbfs / 20), n)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def frames_of(x: np.ndarray) -> np.ndarray:
    n = len(x) // SAMPLES_PER_FRAME
    return x[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME)


def speech_span(x: np.ndarray) -> tuple[float, float]:
    """(start, end) seconds of a clean prompt: its first and last frame above -45 dBFS."""
    loud = np.flatnonzero(frame_levels_dbfs(frames_of(x)) > SPEECH_DBFS)
    return loud[0] * FRAME_MS / 1000, (loud[-1] + 1) * FRAME_MS / 1000


def conversation(
    prompts: tuple[str, ...],
    noise_dbfs: float,
    gap_s: float = 2.0,
    seed: int = 0,
    tail_s: float = 3.0,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """1 s of noise, the prompts with ``gap_s`` of noise between, ``tail_s`` of noise after.

    Returns the int16 signal and each prompt's real (start, end) in seconds.
    """
    rng = np.random.default_rng(seed)
    parts, truth, t = [np.zeros(SAMPLE_RATE)], [], 1.0
    for i, name in enumerate(prompts):
        x = read_slin(SOUNDS / name).astype(np.float64)
        a, b = speech_span(x)
        truth.append((t + a, t + b))
        gap = gap_s if i < len(prompts) - 1 else tail_s
        parts += [x, np.zeros(round(gap * SAMPLE_RATE))]
        t += len(x) / SAMPLE_RATE + gap
    clean = np.concatenate(parts)
    return to_int16(clean + white(len(clean), noise_dbfs, rng)), truth


def run(vad: VoiceActivity, x: np.ndarray) -> list[tuple[SpeechEvent, float]]:
    """Events with the time (s) at the end of the frame that raised them."""
    block = frames_of(x)
    levels = frame_levels_dbfs(block)
    events = []
    for i, (frame, level) in enumerate(zip(block, levels, strict=True)):
        ev = vad.update(frame.tobytes(), float(level))
        if ev is not None:
            events.append((ev, (i + 1) * FRAME_MS / 1000))
    return events


# -- levels ------------------------------------------------------------------------------


def test_frame_levels_dbfs_reference_points() -> None:
    t = np.arange(SAMPLES_PER_FRAME)
    sine = to_int16(32767 * np.sin(2 * np.pi * 1000 * t / SAMPLE_RATE))
    rng = np.random.default_rng(1)
    noise = to_int16(white(SAMPLES_PER_FRAME * 50, -40.0, rng)).reshape(50, SAMPLES_PER_FRAME)
    block = np.vstack([sine, np.zeros(SAMPLES_PER_FRAME, np.int16), noise])
    levels = frame_levels_dbfs(block)
    assert levels.shape == (52,)
    assert levels[0] == pytest.approx(-3.01, abs=0.01)
    assert levels[1] == FLOOR_DBFS
    assert np.mean(levels[2:]) == pytest.approx(-40.0, abs=0.3)
    one_lsb = frame_levels_dbfs(np.resize(np.array([1, -1], np.int16), (1, SAMPLES_PER_FRAME)))
    assert FLOOR_DBFS < one_lsb[0] < -90


def test_a_dc_offset_is_no_sound() -> None:
    # What an analog port adds: a constant frame is silence, and a tone over it keeps
    # the tone's own level.
    t = np.arange(SAMPLES_PER_FRAME)
    tone = 1000 * np.sin(2 * np.pi * 1000 * t / SAMPLE_RATE)
    block = to_int16(np.vstack([np.full(SAMPLES_PER_FRAME, 655.0), tone, tone + 655.0]))
    levels = frame_levels_dbfs(block)
    assert levels[0] == FLOOR_DBFS
    assert levels[2] == pytest.approx(levels[1], abs=0.01)


def test_frame_levels_dbfs_wants_a_block() -> None:
    with pytest.raises(ValueError, match="shape"):
        frame_levels_dbfs(np.zeros(SAMPLES_PER_FRAME, np.int16))


# -- speech start and end ----------------------------------------------------------------


PAIRS = [
    ("vm-intro.wav", "tt-weasels.wav"),
    ("all-circuits-busy-now.wav", "cannot-complete-as-dialed.wav"),
    ("auth-thankyou.wav", "vm-goodbye.wav"),
]


@needs_sounds
@pytest.mark.parametrize("dc", [0.0, 0.02], ids=["no-offset", "offset-2%"])
@pytest.mark.parametrize("noise_dbfs", [-50.0, -40.0])
@pytest.mark.parametrize("prompts", PAIRS, ids=lambda p: p[0])
def test_start_and_end_on_real_speech(prompts: tuple[str, str], noise_dbfs: float,
                                      dc: float) -> None:
    # An analog port's DC offset (2 % of full scale) must not hide the speech.
    x, truth = conversation(prompts, noise_dbfs, gap_s=2.0, seed=len(prompts[0]))
    x = to_int16(x + dc * 32768)
    vad = VoiceActivity(mode=3, start_ms=60, end_ms=800)
    events = run(vad, x)
    assert [e for e, _ in events] == [SpeechEvent.START, SpeechEvent.END] * 2
    for (start, end), ((_, t_start), (_, t_end)) in zip(
        truth, zip(events[::2], events[1::2], strict=True), strict=True
    ):
        assert 0.0 <= t_start - start <= 0.2  # start_ms plus a frame or two
        # END comes end_ms after the last speech frame: never later than end_ms + 300 ms
        # after the real end, and not much earlier either (a quiet tail sinks in the noise).
        assert 0.8 - 0.4 <= t_end - end <= 0.8 + 0.3
    assert not vad.in_speech
    assert vad.noise_floor_dbfs == pytest.approx(noise_dbfs, abs=2.0)


@needs_sounds
def test_voicemail_end_hangover_bridges_a_pause() -> None:
    """With voicemail's 3 s hangover the 2 s pause between prompts is one message."""
    x, truth = conversation(PAIRS[1], -45.0, gap_s=2.0, seed=3, tail_s=5.0)
    events = run(VoiceActivity(end_ms=3000), x)
    assert [e for e, _ in events] == [SpeechEvent.START, SpeechEvent.END]
    assert 3.0 - 0.4 <= events[1][1] - truth[1][1] <= 3.0 + 0.3


@needs_sounds
def test_speech_from_the_first_frame_is_still_found() -> None:
    """No noise before the talker to calibrate on: the floor drops at the first pause."""
    rng = np.random.default_rng(5)
    clean = read_slin(SOUNDS / "vm-intro.wav").astype(np.float64)[400:]
    x = to_int16(np.concatenate([clean, np.zeros(2 * SAMPLE_RATE)]))
    x = to_int16(x + white(len(x), -50.0, rng))
    events = run(VoiceActivity(), x)
    assert [e for e, _ in events] == [SpeechEvent.START, SpeechEvent.END]
    assert events[0][1] < 0.6


# -- no speech ---------------------------------------------------------------------------


@pytest.mark.parametrize("noise_dbfs", [-60.0, -50.0, -40.0, -30.0])
@pytest.mark.parametrize("mode", [0, 3])
def test_noise_alone_is_never_speech(noise_dbfs: float, mode: int) -> None:
    rng = np.random.default_rng(int(-noise_dbfs) + mode)
    x = to_int16(white(20 * SAMPLE_RATE, noise_dbfs, rng))
    vad = VoiceActivity(mode=mode)
    assert run(vad, x) == []
    assert vad.speech_frames == 0


def test_digital_silence_is_never_speech() -> None:
    vad = VoiceActivity(mode=0, start_ms=20, margin_db=0.0)
    zeros = np.zeros(5 * SAMPLE_RATE, np.int16)
    # A-law idle (0xD5) decodes to +8: codec silence, not line noise.
    alaw_idle = alaw_decode(alaw_encode(np.zeros(5 * SAMPLE_RATE, np.int16)))
    assert run(vad, zeros) == [] and run(vad, alaw_idle) == []
    assert vad.speech_frames == 0
    assert not vad.calibrated  # nothing so far has told it where the line noise is


# -- noise floor -------------------------------------------------------------------------


@pytest.mark.parametrize("noise_dbfs", [-55.0, -50.0, -40.0])
def test_noise_floor_calibrates_within_a_second(noise_dbfs: float) -> None:
    rng = np.random.default_rng(7)
    vad = VoiceActivity()
    run(vad, to_int16(white(SAMPLE_RATE, noise_dbfs, rng)))
    # A tracked minimum sits a little under the mean level of white noise.
    assert noise_dbfs - 2.5 <= vad.noise_floor_dbfs <= noise_dbfs


def test_noise_floor_follows_a_line_that_gets_noisier_and_ignores_digital_silence() -> None:
    rng = np.random.default_rng(8)
    vad = VoiceActivity()
    run(vad, to_int16(white(2 * SAMPLE_RATE, -55.0, rng)))
    run(vad, np.zeros(2 * SAMPLE_RATE, np.int16))  # a dropout must not drag the floor down
    assert vad.noise_floor_dbfs == pytest.approx(-55.0, abs=2.5)
    assert run(vad, to_int16(white(8 * SAMPLE_RATE, -45.0, rng))) == []
    assert vad.noise_floor_dbfs == pytest.approx(-45.0, abs=2.5)


def band_noise(n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Line noise in the telephone band (300-3400 Hz) at ``dbfs``."""
    import scipy.signal

    b, a = scipy.signal.butter(4, [300 / 4000, 3400 / 4000], btype="band")
    w = scipy.signal.lfilter(b, a, rng.normal(0.0, 1.0, n))
    return np.asarray(w / np.sqrt(np.mean(w**2)) * 32768 * 10 ** (dbfs / 20))


@needs_sounds
def test_speech_ends_even_when_the_line_gets_30_db_noisier_after_it() -> None:
    # webrtcvad calls loud steady noise speech, and the floor rose only on frames it did
    # not: a voicemail on a line whose noise rose 30 dB after the message never ended.
    rng = np.random.default_rng(12)
    said = read_slin(SOUNDS / "vm-intro.wav").astype(np.float64)
    x = band_noise(len(said) + 20 * SAMPLE_RATE, -58.0, rng)
    x[:len(said)] += said
    step = len(said) + SAMPLE_RATE
    x[step:] *= 10 ** (30 / 20)
    events = run(VoiceActivity(end_ms=3000), to_int16(x))
    assert events[0][0] is SpeechEvent.START and events[-1][0] is SpeechEvent.END
    assert events[-1][1] - step / SAMPLE_RATE < 12.0  # the floor's window, then end_ms


def test_bad_mode_and_short_last_frame() -> None:
    with pytest.raises(ValueError, match="0-3"):
        VoiceActivity(mode=4)
    vad = VoiceActivity(margin_db=0.0)
    short = to_int16(white(100, -20.0, np.random.default_rng(9))).tobytes()
    assert vad.update(short, -20.0) is None  # padded, not an exception from webrtcvad
