"""The DTMF detector against ITU-T Q.24, the spandsp binding, and the digit merger.

Q.24 points are tested over all 16 keys and over several start offsets within a frame,
since both detectors work in blocks that a tone may straddle. Many signals run at once as
channels of one DtmfBank, the way the engine feeds it, which keeps the sweeps fast. Every
random source has a fixed seed.
"""

from __future__ import annotations

import glob
import struct
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from appliance.media import dtmf, spandsp
from appliance.media.dtmf import (
    NOTCH_SOS,
    DigitMerger,
    DtmfBank,
    DtmfDetector,
    detect_digits,
    detect_dtmf_file,
)
from appliance.media.wavio import WavFormatError, write_slin
from tests.media import _dtmf_mandarin as mandarin
from tests.media import _dtmf_signals as sig

KEYS = sig.KEYS
OFFSETS = (0, 37, 71, 113, 149)  # tone start within its first frame, in samples
LEAD = 3 * 160  # silence before the first tone


def run_bank(signals: Sequence[np.ndarray],
             bank: DtmfBank | None = None) -> tuple[list[str], list[list[int]]]:
    """Each signal as one channel of a bank: the keys per channel and the frame of each."""
    n_frames = (max(len(s) for s in signals) + 159) // 160 + 3
    block = np.zeros((len(signals), n_frames * 160), np.int16)
    for i, s in enumerate(signals):
        block[i, : len(s)] = s if s.dtype == np.int16 else sig.to_slin(s)
    bank = DtmfBank() if bank is None else bank
    slots = [bank.open() for _ in signals]
    keys = [""] * len(signals)
    frames: list[list[int]] = [[] for _ in signals]
    for f in range(n_frames):
        for i, d in bank.process(slots, block[:, f * 160 : (f + 1) * 160]):
            keys[i] += d
            frames[i].append(f)
    return keys, frames


def each_key(make: Callable[[str, int], np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    """A signal per key and offset: silence, ``make(key, i)``, silence."""
    signals: list[np.ndarray] = []
    keys: list[str] = []
    for key in KEYS:
        for i, offset in enumerate(OFFSETS):
            signals.append(
                np.concatenate([np.zeros(LEAD + offset), make(key, i), sig.silence(100)])
            )
            keys.append(key)
    return signals, keys


def plain_spandsp(x: np.ndarray) -> str:
    """Keys from spandsp alone, no band-stop and no numpy side."""
    codes: list[int] = []
    with spandsp.DtmfRx(lambda code, _level, _dur: codes.append(code)) as rx:
        rx.rx(sig.to_slin(np.concatenate([x, sig.silence(60)])))
    return "".join(chr(c) for c in codes if c)


def failures(got: list[str], want: list[str]) -> list[tuple[int, str, str]]:
    return [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]


# --- spandsp binding ---------------------------------------------------------------


def test_binding_round_trip_reports_onset_and_end_with_durations() -> None:
    with spandsp.DtmfTx(level_dbm0=-10, on_ms=50, off_ms=50) as tx:
        tx.put("1A#")
        audio = tx.tx(8000)
    assert len(audio) == 3 * 800
    reports: list[tuple[int, int, int]] = []
    with spandsp.DtmfRx(lambda code, level, dur: reports.append((code, level, dur))) as rx:
        for start in range(0, len(audio), 160):
            rx.rx(audio[start : start + 160])
        rx.rx(np.zeros(320, np.int16))
    codes = [code for code, _, _ in reports]
    assert codes == [ord("1"), 0, ord("A"), 0, ord("#"), 0]
    # Onsets come on 102-sample block ends, two blocks into the tone; durations add up
    # to the sample positions of the reports.
    times = np.cumsum([dur for _, _, dur in reports])
    assert all(t % 102 == 0 for t in times)
    assert times[0] == 204
    assert all(-14 <= level <= -4 for code, level, _ in reports if code)


def test_binding_is_loaded_once() -> None:
    assert spandsp.load() is spandsp.load()


def test_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spandsp.ctypes.util, "find_library", lambda name: "libnot-there.so.9")
    with pytest.raises(spandsp.SpandspUnavailable, match="libspandsp2"):
        spandsp._load_library()


# --- the 450 Hz band-stop ----------------------------------------------------------


def test_notch_covers_450_plus_minus_25_hz_and_spares_dtmf() -> None:
    band = np.linspace(425, 475, 101)
    _, h = scipy.signal.sosfreqz(NOTCH_SOS, worN=band, fs=8000)
    assert 20 * np.log10(np.abs(h)).max() <= -32
    _, h = scipy.signal.sosfreqz(NOTCH_SOS, worN=sig.ROWS + sig.COLS, fs=8000)
    assert np.abs(20 * np.log10(np.abs(h))).max() <= 0.5


def test_block_matrix_notch_equals_streaming_sosfilt() -> None:
    x = sig.awgn(160 * 20, -10, seed=7) + sig.tone(450, 400, -5)
    zi = np.zeros((NOTCH_SOS.shape[0], 2))
    want = []
    for f in range(0, len(x), 160):
        y, zi = scipy.signal.sosfilt(NOTCH_SOS, x[f : f + 160], zi=zi)
        want.append(y)
    state = np.zeros(2 * NOTCH_SOS.shape[0], np.float32)
    got = []
    for f in range(0, len(x), 160):
        out = np.concatenate([x[f : f + 160], state]).astype(np.float32) @ dtmf._NOTCH_M
        got.append(out[:160])
        state = out[160:]
    assert np.abs(np.concatenate(got) - np.concatenate(want)).max() < 0.05  # of an LSB


def test_premise_450_hz_defeats_plain_spandsp() -> None:
    """Why the band-stop exists: spandsp alone loses keys under a 450 Hz tone."""
    found = 0
    for key in KEYS:
        found += bool(plain_spandsp(sig.dtmf(key, 60) + sig.tone(450, 60, -10)))
    assert found == 0


# --- Q.24 --------------------------------------------------------------------------


def test_all_sixteen_keys_in_sequence() -> None:
    x = sig.to_slin(sig.keys(KEYS + "0123456789*#ABCD"))
    assert detect_digits(x) == KEYS + "0123456789*#ABCD"


def test_all_keys_at_every_offset() -> None:
    signals, want = each_key(lambda key, _: sig.dtmf(key, 50))
    assert failures(run_bank(signals)[0], want) == []


SIGNS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))


@pytest.mark.parametrize(("low", "high"), SIGNS)
def test_frequency_offset_of_1_5_percent_is_accepted(low: int, high: int) -> None:
    signals, want = each_key(
        lambda key, _: sig.dtmf(key, 50, low_dev=0.015 * low, high_dev=0.015 * high)
    )
    assert failures(run_bank(signals)[0], want) == []


@pytest.mark.parametrize(("low", "high"), SIGNS)
def test_frequency_offset_of_3_5_percent_is_rejected(low: int, high: int) -> None:
    """Including one tone off and the other exact, which plain spandsp accepts for 7 and *."""
    signals, _ = each_key(
        lambda key, _: sig.dtmf(key, 50, low_dev=0.035 * low, high_dev=0.035 * high)
    )
    assert run_bank(signals)[0] == [""] * len(signals)


def test_premise_spandsp_alone_accepts_a_low_tone_3_5_percent_off() -> None:
    """Why spandsp's keys are vetted: it takes 1, 2, 3, A with 697 Hz 3.5 % low."""
    for key in "123A":
        assert plain_spandsp(sig.dtmf(key, 60, low_dev=-0.035)) == key


def test_premise_spandsp_alone_misses_1_5_percent_on_the_1633_hz_column() -> None:
    """Why the numpy side exists: at +1.5 % on both tones spandsp loses some of A-D."""
    missed = 0
    for key in "ABCD":
        for offset in OFFSETS:
            x = np.concatenate([np.zeros(offset), sig.dtmf(key, 60, low_dev=0.015, high_dev=0.015)])
            missed += not plain_spandsp(x)
    assert missed > 0


def frame_offsets() -> range:
    return range(0, 160, 16)


@pytest.mark.parametrize(("ms", "accept"), [(40, True), (22, False), (20, False)])
def test_tone_duration(ms: int, accept: bool) -> None:
    signals: list[np.ndarray] = []
    want: list[str] = []
    for key in KEYS:
        for offset in frame_offsets():
            signals.append(
                np.concatenate([np.zeros(LEAD + offset), sig.dtmf(key, ms), sig.silence(100)])
            )
            want.append(key if accept else "")
    assert failures(run_bank(signals)[0], want) == []


@pytest.mark.parametrize(
    ("low_dbm0", "high_dbm0"),
    [(-4, -12), (-12, -20), (-22, -30), (-12, -8), (-20, -16), (-28, -24)],
    ids=["normal8-loud", "normal8", "normal8-quiet", "reverse4-loud", "reverse4", "reverse4-quiet"],
)
def test_twist(low_dbm0: float, high_dbm0: float) -> None:
    signals, want = each_key(
        lambda key, _: sig.dtmf(key, 50, low_dbm0=low_dbm0, high_dbm0=high_dbm0)
    )
    assert failures(run_bank(signals)[0], want) == []


@pytest.mark.parametrize("level", [0.0, -10.0, -20.0, -30.0, -36.0])
def test_dynamic_range(level: float) -> None:
    signals, want = each_key(lambda key, _: sig.dtmf(key, 50, low_dbm0=level))
    assert failures(run_bank(signals)[0], want) == []


@pytest.mark.parametrize("level", [0.0, -25.0, -36.0])
def test_keys_through_a_law(level: float) -> None:
    """Lines in China are A-law: G.711 quantisation costs nothing, even 1.5 % off."""
    from appliance.media import g711

    signals, want = each_key(
        lambda key, i: sig.dtmf(key, 45, low_dbm0=level, low_dev=0.015 * (-1) ** i)
    )
    coded = [g711.alaw_decode(g711.alaw_encode(sig.to_slin(s))) for s in signals]
    assert failures(run_bank(coded)[0], want) == []


def with_noise(x: np.ndarray, snr_db: float, signal_dbm0: float, seed: int) -> np.ndarray:
    return x + sig.awgn(len(x), signal_dbm0 - snr_db, seed)


@pytest.mark.parametrize("level", [-10.0, -25.0])
def test_white_noise_at_15_db_snr(level: float) -> None:
    """AWGN over the whole 0-4 kHz band, 15 dB below the pair's total power."""
    pair_dbm0 = level + 10 * np.log10(2)
    signals, want = each_key(lambda key, _: sig.dtmf(key, 50, low_dbm0=level))
    noisy = [with_noise(s, 15, pair_dbm0, seed=1000 + i) for i, s in enumerate(signals)]
    assert failures(run_bank(noisy)[0], want) == []


def test_noise_alone_gives_no_keys() -> None:
    signals = [sig.awgn(8000 * 2, level, seed=i) for i, level in enumerate((-50, -30, -15, -5))]
    assert run_bank(signals)[0] == [""] * len(signals)


@pytest.mark.parametrize("hz", [425, 450, 475])
@pytest.mark.parametrize(
    ("tone_dbm0", "key_dbm0"), [(-10, -10), (0, -15), (-5, -20)], ids=["same", "+15", "+15-quiet"]
)
def test_keys_under_a_450_hz_tone(hz: float, tone_dbm0: float, key_dbm0: float) -> None:
    signals, want = each_key(lambda key, _: sig.dtmf(key, 50, low_dbm0=key_dbm0))
    under = [s + sig.tone(hz, len(s) / 8, tone_dbm0) for s in signals]
    assert failures(run_bank(under)[0], want) == []


@pytest.mark.parametrize(("what", "below"), [
    ("DC 2 % of full scale", lambda n: np.full(n, 0.02 * 32768)),
    ("DC -1 %", lambda n: np.full(n, -0.01 * 32768)),
    ("50 Hz hum at -30 dBFS", lambda n: 32768 * 10 ** (-30 / 20) * np.sqrt(2)
     * np.sin(2 * np.pi * 50 * np.arange(n) / 8000)),
])
@pytest.mark.parametrize("key_dbm0", [-25, -35])
def test_keys_over_what_an_analog_port_adds_below_the_band(
        what: str, below: Callable[[int], np.ndarray], key_dbm0: float) -> None:
    """A DC offset or mains hum counted as the keys' rival energy: every key was lost
    at -35 dBm0 over an offset of 1 % of full scale."""
    signals, want = each_key(lambda key, _: sig.dtmf(key, 50, low_dbm0=key_dbm0))
    assert failures(run_bank([s + below(len(s)) for s in signals])[0], want) == [], what


def test_the_filter_in_front_takes_out_dc_and_mains_hum() -> None:
    _, h = scipy.signal.sosfreqz(NOTCH_SOS, worN=[1, 50, 100], fs=8000)
    assert (20 * np.log10(np.abs(h)) <= [-150, -35, -12]).all()


def test_keys_while_the_450_hz_tone_switches() -> None:
    """The band-stop's ringing when a cadenced tone starts or stops mid-key splits no key."""
    signals: list[np.ndarray] = []
    want: list[str] = []
    for key in KEYS:
        for offset in (0, 80):
            for cut in (200, 500):
                x = np.concatenate(
                    [np.zeros(LEAD + offset), sig.dtmf(key, 100, low_dbm0=-15), sig.silence(100)]
                )
                gate = np.zeros(len(x))
                gate[LEAD + offset + cut :] = 1
                t = sig.tone(450, len(x) / 8, 0)
                signals += [x + t * gate, x + t * (1 - gate)]
                want += [key, key]
    assert failures(run_bank(signals)[0], want) == []


def test_china_call_progress_tones_alone_give_no_keys() -> None:
    signals: list[np.ndarray] = []
    for hz in (425, 450, 475):
        busy = np.concatenate([sig.tone(hz, 350, 0), sig.silence(350)] * 6)
        vacant = np.concatenate(
            [sig.tone(hz, 100, -10), sig.silence(100)] * 3
            + [sig.tone(hz, 400, -10), sig.silence(400)] * 3
        )
        signals += [busy, vacant, sig.tone(hz, 3000, 3)]
    assert run_bank(signals)[0] == [""] * len(signals)


def test_a_10_ms_break_inside_a_tone_is_one_key() -> None:
    signals: list[np.ndarray] = []
    want: list[str] = []
    for key in KEYS:
        for offset in range(0, 160, 8):  # every position of the break in 102-sample blocks
            signals.append(
                np.concatenate(
                    [
                        np.zeros(LEAD + offset),
                        sig.dtmf(key, 50),
                        sig.silence(10),
                        sig.dtmf(key, 50),
                        sig.silence(100),
                    ]
                )
            )
            want.append(key)
    assert failures(run_bank(signals)[0], want) == []


@pytest.mark.parametrize("pause_ms", [40, 50])
def test_a_real_pause_between_two_presses_is_two_keys(pause_ms: int) -> None:
    signals: list[np.ndarray] = []
    want: list[str] = []
    for key in KEYS:
        for offset in range(0, 160, 8):
            signals.append(
                np.concatenate(
                    [
                        np.zeros(LEAD + offset),
                        sig.dtmf(key, 40),
                        sig.silence(pause_ms),
                        sig.dtmf(key, 40),
                        sig.silence(100),
                    ]
                )
            )
            want.append(key * 2)
    assert failures(run_bank(signals)[0], want) == []


def test_break_and_pause_with_offsets_and_noise() -> None:
    """1.5 % off (where spandsp drops out) and 15 dB S/N: bridging still tells them apart."""
    signals: list[np.ndarray] = []
    want: list[str] = []
    for key in KEYS:
        for j, offset in enumerate(range(0, 160, 20)):
            dev = {"low_dev": 0.015 * (-1) ** j, "high_dev": 0.015 * (-1) ** (j // 2)}
            for gap_ms, n in ((10, 1), (40, 2)):
                x = np.concatenate(
                    [
                        np.zeros(LEAD + offset),
                        sig.dtmf(key, 50, **dev),
                        sig.silence(gap_ms),
                        sig.dtmf(key, 50, **dev),
                        sig.silence(100),
                    ]
                )
                signals.append(with_noise(x, 15, -7, seed=len(signals)))
                want.append(key * n)
    assert failures(run_bank(signals)[0], want) == []


@pytest.mark.parametrize("gap_ms", [0, 5, 20])
def test_different_keys_back_to_back_are_both_reported(gap_ms: int) -> None:
    signals: list[np.ndarray] = []
    want: list[str] = []
    for a, b in zip(KEYS, KEYS[1:] + KEYS[0], strict=True):
        for offset in range(0, 160, 40):
            parts = [np.zeros(LEAD + offset), sig.dtmf(a, 50), sig.silence(gap_ms)]
            signals.append(np.concatenate([*parts, sig.dtmf(b, 50), sig.silence(100)]))
            want.append(a + b)
    assert failures(run_bank(signals)[0], want) == []


def test_keys_are_reported_at_onset() -> None:
    """Most keys in the tone's second frame, none after its third (a 100 ms tone)."""
    signals: list[np.ndarray] = []
    starts: list[int] = []
    for key in KEYS:
        for offset in range(0, 160, 5):
            starts.append((LEAD + offset) // 160)
            signals.append(
                np.concatenate([np.zeros(LEAD + offset), sig.dtmf(key, 100), sig.silence(100)])
            )
    keys, frames = run_bank(signals)
    assert keys == [k for k in KEYS for _ in range(0, 160, 5)]
    late = np.array([f[0] - s for f, s in zip(frames, starts, strict=True)])
    assert set(late.tolist()) <= {1, 2}
    assert np.mean(late == 1) >= 0.6  # p50 latency: 20 ms after the first tone frame


def test_frame_aligned_keys_come_in_the_second_frame() -> None:
    signals = [np.concatenate([np.zeros(LEAD), sig.dtmf(key, 60), sig.silence(60)]) for key in KEYS]
    keys, frames = run_bank(signals)
    assert keys == list(KEYS)
    assert all(f == [LEAD // 160 + 1] for f in frames)


def test_spandsp_rests_on_quiet_rows_and_keys_after_a_long_quiet_come_on_time() -> None:
    """A channel is fed to spandsp only near where its gate opens (dtmf.SP_HOLD): after
    3 s of silence each key still comes in its tone's second frame, as after 60 ms, and
    spandsp ran for a few frames per channel, not for every one."""
    quiet = 150  # frames before the tone
    signals = [np.concatenate([np.zeros(quiet * 160), sig.dtmf(key, 60), sig.silence(200)])
               for key in KEYS]
    bank = DtmfBank()
    fed = 0
    rx = bank._rx

    def counting_rx(state: int, address: int, samples: int) -> int:
        nonlocal fed
        fed += 1
        return int(rx(state, address, samples))

    bank._rx = counting_rx  # type: ignore[assignment]
    keys, frames = run_bank(signals, bank)
    assert keys == list(KEYS)
    assert all(f == [quiet + 1] for f in frames)
    # The tone's frames and the hold after them (plus the frame before), not 150 + 15.
    assert fed <= len(KEYS) * (dtmf.SP_HOLD // 160 + 6)


# --- talk-off ----------------------------------------------------------------------

ASTERISK_SOUNDS = "/usr/share/asterisk/sounds/en"


def talk_off(signals: list[np.ndarray], channels: int = 48) -> list[str]:
    """Run the recordings as ``channels`` streams, each a run of whole recordings."""
    streams: list[list[np.ndarray]] = [[] for _ in range(channels)]
    lengths = [0] * channels
    for x in sorted(signals, key=len, reverse=True):
        c = int(np.argmin(lengths))
        streams[c].append(x)
        lengths[c] += len(x)
    return [k for k in run_bank([np.concatenate(s) for s in streams if s])[0] if k]


@pytest.mark.slow
def test_talk_off_on_all_asterisk_english_prompts() -> None:
    from appliance.media.wavio import read_slin

    paths = sorted(glob.glob(f"{ASTERISK_SOUNDS}/**/*.wav", recursive=True))
    if not paths:
        pytest.skip("asterisk-core-sounds-en-wav is not installed")
    recordings = [read_slin(p) for p in paths]
    assert sum(map(len, recordings)) > 20 * 60 * 8000  # the ~25 minutes the test is about
    assert talk_off(recordings) == []


@pytest.mark.slow
def test_talk_off_on_mandarin_speech(tmp_path: Path) -> None:
    if not mandarin.available():
        pytest.skip("espeak-ng and sox are needed")
    from appliance.media.wavio import read_slin

    recordings = [read_slin(p) for p in mandarin.synthesize(tmp_path)]
    assert sum(map(len, recordings)) > 10 * 60 * 8000
    assert talk_off(recordings, channels=24) == []


# --- API -----------------------------------------------------------------------------


def test_channels_are_independent_and_rows_are_reported_in_order() -> None:
    bank = DtmfBank()
    slots = [bank.open() for _ in range(5)]
    x = {
        s: sig.to_slin(sig.keys(k)) for s, k in zip(slots, ["12", "", "#", "9D", "0"], strict=True)
    }
    n = max(len(v) for v in x.values())
    order = [slots[3], slots[0], slots[4], slots[2], slots[1]]  # rows need not follow slots
    block = np.zeros((5, n), np.int16)
    for i, s in enumerate(order):
        block[i, : len(x[s])] = x[s]
    got: dict[int, str] = {s: "" for s in slots}
    for f in range(0, n - n % 160, 160):
        for i, d in bank.process(order, block[:, f : f + 160]):
            got[order[i]] += d
    assert [got[s] for s in slots] == ["12", "", "#", "9D", "0"]


def test_a_channel_can_skip_ticks_and_subsets_are_fed() -> None:
    """Only the slots in ``slots`` advance; a channel left out simply waits."""
    bank = DtmfBank()
    a, b = bank.open(), bank.open()
    xa, xb = sig.to_slin(sig.keys("47")), sig.to_slin(sig.keys("*"))
    got = {a: "", b: ""}
    for f in range(0, len(xa) - 160, 160):
        for _, d in bank.process([a], xa[None, f : f + 160]):
            got[a] += d
        if f % 320 == 0 and f // 2 + 160 <= len(xb):
            g = f // 2
            for _, d in bank.process(np.array([b]), xb[None, g : g + 160]):
                got[b] += d
    assert got == {a: "47", b: "*"}


def test_open_reuses_closed_slots_and_close_is_idempotent() -> None:
    bank = DtmfBank()
    slots = [bank.open() for _ in range(40)]  # past the first growth
    assert len(set(slots)) == 40
    bank.close(slots[7])
    bank.close(slots[7])
    bank.close(10_000)
    assert bank.open() == slots[7]
    # A reused slot starts clean: no leftover state from its previous owner.
    x = sig.to_slin(sig.keys("5"))
    got = ""
    for f in range(0, len(x) - len(x) % 160, 160):
        got += "".join(d for _, d in bank.process([slots[7]], x[None, f : f + 160]))
    assert got == "5"


def test_process_refuses_closed_slots_and_bad_blocks() -> None:
    bank = DtmfBank()
    s = bank.open()
    with pytest.raises(ValueError, match="int16"):
        bank.process([s], np.zeros((1, 160), np.float32))
    with pytest.raises(ValueError, match=r"\(1, 160\)"):
        bank.process([s], np.zeros((2, 160), np.int16))
    with pytest.raises(ValueError, match="twice"):
        bank.process([s, s], np.zeros((2, 160), np.int16))
    with pytest.raises(ValueError, match="slots must be"):
        bank.process([s + 1000], np.zeros((1, 160), np.int16))
    bank.close(s)
    with pytest.raises(ValueError, match="not open"):
        bank.process([s], np.zeros((1, 160), np.int16))
    assert bank.process([], np.zeros((0, 160), np.int16)) == []


def test_detector_fed_in_odd_chunks_matches_whole_signal() -> None:
    x = sig.to_slin(with_noise(sig.keys("3A*0", on_ms=45, off_ms=45), 20, -7, seed=3))
    got = []
    with DtmfDetector() as det:
        rng = np.random.default_rng(11)
        i = 0
        while i < len(x):
            n = int(rng.integers(1, 700))
            got += det.feed(x[i : i + n])
            i += n
        got += det.feed(np.zeros(320, np.int16))
    assert "".join(got) == detect_digits(x) == "3A*0"


def test_detect_dtmf_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.wav"
    write_slin(path, sig.to_slin(sig.keys("0571#")))
    assert detect_dtmf_file(path) == "0571#"


@pytest.mark.parametrize(("rate", "width", "channels"), [(16000, 2, 1), (8000, 1, 1), (8000, 2, 2)])
def test_detect_dtmf_file_refuses_other_formats(
    tmp_path: Path, rate: int, width: int, channels: int
) -> None:
    path = tmp_path / "wrong.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(width * channels * 800))
    with pytest.raises(WavFormatError, match="expected 8000 Hz, 16-bit"):
        detect_dtmf_file(path)


def extensible_wav(pcm: bytes, *, subformat: int = 1, rate: int = 8000) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE mono 16-bit file, as some editors write plain PCM, with a
    LIST chunk of odd length (padded) between its header and its audio."""
    guid = struct.pack("<H", subformat) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, rate, 2 * rate, 2, 16, 22, 16, 4) + guid
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"LIST" + struct.pack("<I", 3) + b"abc\0"
            + b"data" + struct.pack("<I", len(pcm)) + pcm)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_detect_dtmf_file_takes_pcm_in_the_extensible_header(tmp_path: Path) -> None:
    path = tmp_path / "keys.wav"
    path.write_bytes(extensible_wav(sig.to_slin(sig.keys("0571#")).tobytes()))
    assert detect_dtmf_file(path) == "0571#"
    path.write_bytes(extensible_wav(sig.to_slin(sig.keys("9")).tobytes(), subformat=3))
    with pytest.raises(WavFormatError, match="not integer PCM"):
        detect_dtmf_file(path)
    path.write_bytes(extensible_wav(sig.to_slin(sig.keys("9")).tobytes(), rate=16000))
    with pytest.raises(WavFormatError, match="expected 8000 Hz, 16-bit"):
        detect_dtmf_file(path)


def test_detect_dtmf_file_takes_what_streaming_writers_leave(tmp_path: Path) -> None:
    # ffmpeg or sox writing to a pipe cannot go back to fill in the sizes: the RIFF size
    # is 0 or unknown and the data size 0 or 0xFFFFFFFF, the audio runs to the end.
    pcm = sig.to_slin(sig.keys("0571#")).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    for riff, data in ((0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0, len(pcm)), (36 + len(pcm), 0)):
        path = tmp_path / f"stream-{riff}-{data}.wav"
        path.write_bytes(b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt "
                         + struct.pack("<I", len(fmt)) + fmt + b"data"
                         + struct.pack("<I", data) + pcm)
        assert detect_dtmf_file(path) == "0571#", path.name


def test_an_empty_recording_with_metadata_after_it_holds_no_audio(tmp_path: Path) -> None:
    # An editor's empty take: a data chunk of 0 bytes, then its LIST chunk. Not a
    # streaming writer's audio running to the end: the LIST is not read as samples.
    from appliance.media.wavio import read_slin

    path = tmp_path / "empty.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    info = b"INFO" + b"ISFT" + struct.pack("<I", 14) + b"Lavf60.16.100\0"
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0)
            + b"LIST" + struct.pack("<I", len(info)) + info)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert len(read_slin(path)) == 0
    with pytest.raises(WavFormatError, match="holds no audio"):
        read_slin(path, whole=True)


def test_detect_dtmf_file_names_the_format_it_refuses(tmp_path: Path) -> None:
    path = tmp_path / "alaw.wav"
    fmt = struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + 800) + b"WAVE" + b"fmt "
                     + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 800)
                     + bytes(800))
    with pytest.raises(WavFormatError, match=r"not a PCM WAV file \(A-law\)"):
        detect_dtmf_file(path)


def test_detect_dtmf_file_refuses_a_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "not.wav"
    path.write_bytes(b"RIFX nothing here")
    with pytest.raises(WavFormatError):
        detect_dtmf_file(path)


# --- DigitMerger -----------------------------------------------------------------------


def test_merger_reports_a_key_seen_on_both_paths_once() -> None:
    m = DigitMerger()
    assert m.inband("5", 1000) is True
    assert m.outofband("5", 1300) is False
    assert m.outofband("7", 9000) is True
    assert m.inband("7", 9100) is False


def test_merger_keeps_repeated_keys() -> None:
    """'55' on both paths is two keys: each report absorbs at most one from the other path."""
    m = DigitMerger()
    got = [
        m.inband("5", 1000),
        m.outofband("5", 1100),
        m.inband("5", 1900),
        m.outofband("5", 2000),
    ]
    assert got == [True, False, True, False]
    m = DigitMerger()
    got = [
        m.outofband("5", 1000),
        m.outofband("5", 1800),
        m.inband("5", 1900),
        m.inband("5", 2600),
    ]
    assert got == [True, True, False, False]


def test_merger_loses_nothing_on_a_single_path() -> None:
    m = DigitMerger()
    assert all(m.inband(d, 1000 * i) for i, d in enumerate("5555#"))
    m = DigitMerger()
    assert all(m.outofband(d, 1000 * i) for i, d in enumerate("1111*"))


def test_merger_window_and_different_keys() -> None:
    m = DigitMerger(window_samples=800)
    assert m.inband("3", 0)
    assert m.outofband("3", 801)  # too late to be the same key
    assert m.inband("4", 2000)
    assert m.outofband("6", 2001)  # a different key is never absorbed
    assert not m.outofband("4", 2100)
    with pytest.raises(ValueError, match="window_samples"):
        DigitMerger(-1)


def test_merger_counts_the_window_from_the_end_of_a_held_key() -> None:
    # In-band reports the key as it starts; Asterisk's 0x03 comes on release, 2 s later.
    m = DigitMerger(window_samples=2400)
    assert m.inband("5", 0)
    for t in range(160, 16_001, 160):  # the tones go on sounding
        m.held(t)
    assert m.inband_open
    assert not m.outofband("5", 16_400)  # the same key, on release
    assert not m.inband_open
    assert m.outofband("5", 30_000)  # a new press
    m = DigitMerger(window_samples=2400)
    assert m.inband("5", 0)
    assert m.outofband("5", 16_400)  # not followed while held: counted again
