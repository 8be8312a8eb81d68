"""In-band DTMF detection for many channels at once, to ITU-T Q.24, reporting keys at onset.

Each 20 ms tick the engine hands :class:`DtmfBank` one ``(N, 160)`` int16 block. The block
goes through a high-pass (a line's DC offset and hum) and a 450 Hz band-stop (Chinese
call-progress tones sit at 450 ± 25 Hz and defeat spandsp), then two detectors look at it:
spandsp's ``dtmf_rx``, called per row by raw address, and a batched numpy analysis that
judges every channel with a few array operations. The numpy side does what spandsp 0.0.6
cannot: it measures each tone's frequency, so a tone 3.5 % off is refused (spandsp accepts
some); it tolerates tones ±2 % off (spandsp misses 1.5 % on the 1633 Hz column); and,
judging a window every 5 ms rather than every 12.75 ms, it usually declares a key in the
tone's second frame. A key is reported when either detector first declares it (spandsp's
only if the numpy side vouches for its frequencies and duration), and a same-key onset after
a break too short to be a Q.24 pause continues the key instead of repeating it.
:class:`DigitMerger` then folds these with AudioSocket's out-of-band digits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.signal
import scipy.signal.windows

from appliance.media import spandsp
from appliance.media.frame import SAMPLE_RATE, SAMPLES_PER_FRAME
from appliance.media.wavio import read_slin

KEYS: Final = "123A456B789C*0#D"  # row-major: KEYS[4 * row + col]
ROW_HZ: Final = (697.0, 770.0, 852.0, 941.0)
COL_HZ: Final = (1209.0, 1336.0, 1477.0, 1633.0)
_FREQS = np.array(ROW_HZ + COL_HZ)
_N = SAMPLES_PER_FRAME

Int8s = npt.NDArray[np.int8]
Floats = npt.NDArray[np.float32]

# --- the filter in front: a high-pass, then the 450 Hz band-stop ------------------------
# The band-stop: elliptic, two sections: >= 32 dB from 420 to 480 Hz (the whole 450 ± 25
# Hz band with margin), within 0.5 dB from 660 Hz up, so 697 Hz and the twist between
# tones are kept. The high-pass (Butterworth, 4th order, 150 Hz) takes out what an analog
# port adds below the band, a DC offset and mains hum (-38 dB at 50 Hz): counted in the
# "share of the energy" tests (both detectors'), an offset of 1 % of full scale hid every
# key at -35 dBm0. No higher: a voice's own low notes are rival energy that keeps speech
# from passing for a key (at 250 Hz a word of Asterisk's prompts was taken for an A).
_HIGH_PASS_SOS = scipy.signal.butter(4, 150, "highpass", fs=SAMPLE_RATE, output="sos")
NOTCH_SOS: Final = np.vstack((_HIGH_PASS_SOS, scipy.signal.iirdesign(
    wp=(300, 660),
    ws=(420, 480),
    gpass=0.5,
    gstop=32,
    ftype="ellip",
    fs=SAMPLE_RATE,
    output="sos",
)))
_NOTCH_STATE = 2 * NOTCH_SOS.shape[0]


def _block_matrix(sos: npt.NDArray[np.float64], n: int) -> Floats:
    """The filter over one n-sample block as one matrix: [x | s] @ M = [y | s'].

    ``s`` is sosfilt's state (sections x 2, flattened). scipy's sosfilt runs one recurrence
    per channel at ~6 ns a sample whatever the order (latency-bound); as a matrix product
    the whole bank's block is one BLAS call, about half the time. Built by linearity: the
    response to a unit impulse at each sample and to each unit state.
    """
    sections, size = sos.shape[0], 2 * sos.shape[0]
    y_imp, z_imp = scipy.signal.sosfilt(sos, np.eye(n), axis=1, zi=np.zeros((sections, n, 2)))
    unit_states = np.eye(size).reshape(size, sections, 2).transpose(1, 0, 2)
    y_st, z_st = scipy.signal.sosfilt(sos, np.zeros((size, n)), axis=1, zi=unit_states)
    m = np.zeros((n + size, n + size))
    m[:n, :n] = y_imp
    m[:n, n:] = z_imp.transpose(1, 0, 2).reshape(n, size)
    m[n:, :n] = y_st
    m[n:, n:] = z_st.transpose(1, 0, 2).reshape(size, size)
    return m.astype(np.float32)


_NOTCH_M = _block_matrix(NOTCH_SOS, _N)

# --- the numpy analysis ---------------------------------------------------------------
# Every 5 ms a 160-sample window is judged from its two 80-sample halves a and b, each a
# Hamming-windowed DFT at the 8 DTMF frequencies (one matrix product for all channels):
#   tone energy   (|a| + |b|)^2 - phase-tolerant, so a tone 2 % off loses < 0.5 dB
#   frequency     angle(b . conj(a) . rot) / (2 pi 80 / fs): offset from nominal, ±50 Hz
#   balance       |a| against |b|: a window the tone only partly fills has one weak half
# Hamming, not rectangular: rectangular sidelobes carry -19 dB of the pair's other tone
# into each bin (row and column can be 268 Hz apart), which swung the tone energy ±1 dB
# from one window to the next; Hamming keeps that leak under -42 dB.
_HALF = 80
_HOP = 40
_HOPS = _N // _HOP  # windows ending in each frame
_WIN = scipy.signal.windows.hamming(_HALF, sym=False)
_phase = 2 * np.pi * np.outer(np.arange(_HALF), _FREQS) / SAMPLE_RATE
# Columns interleaved (re, im) so the float32 product views directly as complex64.
_BASIS = np.empty((_HALF, 16), dtype=np.float32)
_BASIS[:, 0::2] = _WIN[:, None] * np.cos(_phase)
_BASIS[:, 1::2] = _WIN[:, None] * -np.sin(_phase)
# Windowed energy of the four halves of a 200-sample segment, as one banded product.
_WIN2_BANDED = np.zeros((_HOP + _N, _HOPS), np.float32)
for _k in range(_HOPS):
    _WIN2_BANDED[_k * _HOP : _k * _HOP + _HALF, _k] = _WIN**2
_ROT = np.exp(-2j * np.pi * _FREQS * _HALF / SAMPLE_RATE).astype(np.complex64)
_HZ_PER_RAD = SAMPLE_RATE / (2 * np.pi * _HALF)

# A tone of peak amplitude A gives |half| = A S1 / 2 and windowed energy A^2 S2 / 2 per
# half (S1, S2 the sums of w and w^2): a clean pair scores S1^2 / S2 on the fraction test.
_S1, _S2 = float(_WIN.sum()), float((_WIN**2).sum())
_IDEAL = _S1**2 / _S2
_AMP_0DBM0 = 32767 * 10 ** (-3.14 / 20)  # peak of a 0 dBm0 sine (A-law)
LEVEL_MIN_DBM0: Final = -40.0  # per tone, as spandsp's default threshold (~-42)
_THRESHOLD = np.float32((_AMP_0DBM0 * 10 ** (LEVEL_MIN_DBM0 / 20) * _S1) ** 2)
_NORMAL_TWIST = np.float32(10 ** (10 / 10))  # row up to 10 dB above column (Q.24: 8)
_REVERSE_TWIST = np.float32(10 ** (6 / 10))  # column up to 6 dB above row (Q.24: 4)
_TO_TOTAL = np.float32(0.82 * _IDEAL)  # spandsp's 42/51 of a clean pair
# Rows below half the ideal fraction in every window are skipped by the detailed tests:
# they can neither hit nor vouch for a spandsp key (speech almost never gets this far).
_GATE = np.float32(0.5 * _IDEAL)
FREQ_TOLERANCE: Final = 0.025  # Q.24: accept 1.5 %, reject 3.5 %; split the difference
_MAX_DEV_HZ = (FREQ_TOLERANCE * _FREQS).astype(np.float32)
_BALANCE = np.float32(0.7)  # weaker half >= 70 % of the stronger (~ -3 dB)
# Three agreeing windows (5 ms apart) declare a key. Over 20 alignments x 16 keys no tone
# of 22 ms or less is declared, 9 % at 23 ms, all from 30 ms (Q.24: reject < 23 ms,
# accept >= 40 ms); with two windows 40 % of 20 ms tones passed.
_ON_WINDOWS = 3

# Per-slot carry between frames, one float32 row: notch state, the last 40 filtered
# samples, the last two halves (complex), their magnitudes and energies, and the previous
# frame's vetting keys. One gather and one scatter per tick instead of six.
_C_NOTCH = slice(0, _NOTCH_STATE)
_C_TAIL = slice(_C_NOTCH.stop, _C_NOTCH.stop + _HOP)
_C_HALVES = slice(_C_TAIL.stop, _C_TAIL.stop + 2 * 16)
_C_MAGS = slice(_C_HALVES.stop, _C_HALVES.stop + 2 * 8)
_C_ENERGY = slice(_C_MAGS.stop, _C_MAGS.stop + 2)
_C_CANDS = slice(_C_ENERGY.stop, _C_ENERGY.stop + _HOPS)
_CARRY = _C_CANDS.stop

# --- combining the detectors ------------------------------------------------------------
# Q.24 wants a break of up to 10 ms inside a tone bridged and a 40 ms pause between two
# presses of the same key counted. Both detectors may end a key over a 10 ms break and
# start it again, so a same-key onset right after the key ended is judged by how long the
# tone was really gone. The numpy side measures it best: the hole between its runs of
# hit windows is the break + 120 .. 160 samples (200-240 for 10 ms, 440-480 for 40 ms;
# measured over all alignments, with noise and 1.5 % offsets), so BRIDGE_RUN_GAP splits
# at a ~24 ms break. Fallbacks when the numpy side is not seeing the key again: time since
# it last saw it (spandsp's onset comes break + 180 .. 290 after), else spandsp's own
# end-to-start time (two 102-sample blocks for breaks up to ~20 ms, three or more at 40).
BRIDGE_RUN_GAP: Final = 340
BRIDGE_AFTER_SEEN: Final = 430
BRIDGE_AFTER_SPANDSP_OFF: Final = 255
# spandsp's defaults are 8 and 4 dB as ratios 6.3 and 2.5, which refuse a pair at exactly
# Q.24's 8 dB / 4 dB; allow the same margin as the numpy side.
SPANDSP_TWIST_DB: Final = 10
SPANDSP_REVERSE_TWIST_DB: Final = 6

_SPANDSP_CODE = {ord(k): i + 1 for i, k in enumerate(KEYS)}
# A spandsp onset counts only if the numpy side saw that key (level, balance, frequency
# within tolerance) in at least _VOUCH_WINDOWS of the last 8 windows: this refuses tones
# 3.5 % off, which spandsp accepts for 7 and *, and the 21-22 ms tones spandsp sometimes
# declares. What spandsp still adds is a second opinion on the level, twist and fraction
# tests (it keeps more keys at 6 dB S/N or 10 dB twist, beyond Q.24).
_VOUCH_WINDOWS = 3
# Vouching needs the numpy side's gate open, so spandsp is fed only where a key could come
# of it: rows whose gate opened within the last SP_HOLD samples, or that spandsp reports in
# a key. Other rows (silence, line noise, nearly all speech) skip spandsp, its costliest
# per-row step. A row resuming first gets the frame it skipped last (the start of the
# tone that opened the gate, which spandsp needs to be as quick as when fed everything),
# and carries the samples it skipped before that into spandsp's next report's time, so
# its reports stay on the numpy side's clock. SP_HOLD covers spandsp's end of a key and
# the bridging rules' look-back with room to spare.
SP_HOLD: Final = 10 * _N
_SP, _NQ, _SEEN = 0, 1, 2  # event sources, in the order they apply at one instant


# The four 80-sample halves starting every 40 samples of a 200-sample segment, as column
# indices: seg[:, _HALVES_AT] is the (N, 4, 80) copy in one gather.
_HALVES_AT = np.arange(_HOPS)[:, None] * _HOP + np.arange(_HALF)[None, :]


def _along(a: np.ndarray, best: npt.NDArray[np.intp], first: int = 0) -> np.ndarray:
    """``np.take_along_axis(a[:, first:first + 4], best, 2)`` by plain fancy indexing: the
    numpy helper builds its index grids in Python on every call, and this runs every tick."""
    r = best.shape[0]
    return a[np.arange(r)[:, None, None], _WINDOW_AT[first], best]


_WINDOW_AT = {first: np.arange(first, first + _HOPS)[None, :, None] for first in (0, 2)}


def _analyse(
    seg: Floats, prev_h: npt.NDArray[np.complex64], prev_m: Floats, prev_e: Floats
) -> tuple[Int8s, Int8s, npt.NDArray[np.complex64], Floats, Floats, npt.NDArray[np.bool_]]:
    """Judge the 4 windows ending in each frame.

    ``seg`` is (N, 200): the previous frame's last 40 filtered samples, then this frame's
    160; ``prev_*`` are the previous frame's last two halves, their magnitudes and
    energies. Returns ``hits`` (N, 4), key index + 1 where a window passes every test;
    ``cands`` (N, 4), the same where level, balance and frequency pass (to vet spandsp);
    this frame's last two halves, magnitudes and energies to carry; and ``gated`` (N,),
    the rows past the gate in some window (the only ones that can hit or vouch).
    """
    n = seg.shape[0]
    # One 2-D product for the whole bank (a strided 3-D operand makes numpy loop per row).
    new = (seg[:, _HALVES_AT].reshape(n * _HOPS, _HALF) @ _BASIS).reshape(
        n, _HOPS, 16
    )  # halves starting at -40, 0, 40, 80
    new_e = np.square(seg) @ _WIN2_BANDED  # (n, 4) windowed energy of the same halves
    new_m = new * new
    new_m = np.sqrt(new_m[..., 0::2] + new_m[..., 1::2])  # (n, 4, 8)
    mag = np.concatenate((prev_m, new_m), axis=1)  # (n, 6, 8); window w: halves w, w + 2
    tone = mag[:, :4] + mag[:, 2:]
    tone *= tone
    energy = np.concatenate((prev_e, new_e), axis=1)
    energy = energy[:, :4] + energy[:, 2:]
    # Pairwise maxima: numpy's reductions over a 4-long axis cost 25x more.
    pr_max = np.maximum(
        np.maximum(tone[..., 0], tone[..., 1]), np.maximum(tone[..., 2], tone[..., 3])
    )
    pc_max = np.maximum(
        np.maximum(tone[..., 4], tone[..., 5]), np.maximum(tone[..., 6], tone[..., 7])
    )
    gate = (pr_max + pc_max > _GATE * energy) & (pr_max >= _THRESHOLD) & (pc_max >= _THRESHOLD)
    new_h = new.view(np.complex64)
    hits = np.zeros((n, _HOPS), np.int8)
    cands = np.zeros((n, _HOPS), np.int8)
    gated = gate.any(axis=1)
    rows = gated.nonzero()[0]
    if rows.size:
        hits[rows], cands[rows] = _judge(
            np.concatenate((prev_h[rows], new_h[rows]), axis=1),
            mag[rows],
            tone[rows],
            energy[rows],
        )
    return hits, cands, new_h[:, 2:], new_m[:, 2:], new_e[:, 2:], gated


def _judge(
    h: npt.NDArray[np.complex64], mag: Floats, tone: Floats, energy: Floats
) -> tuple[Int8s, Int8s]:
    """The detailed tests, on the few rows past the gate."""
    row = np.argmax(tone[..., :4], axis=2)
    col = np.argmax(tone[..., 4:], axis=2) + 4
    best = np.stack((row, col), axis=2)  # (r, 4, 2)
    pbest = _along(tone, best)
    pr, pc = pbest[..., 0], pbest[..., 1]
    level_ok = (pr >= _THRESHOLD) & (pc >= _THRESHOLD)
    za = _along(h, best)
    zb = _along(h, best, 2)
    turn = zb * np.conj(za) * _ROT[best]
    # np.angle, without its Python wrapper
    dev_hz = np.abs(np.arctan2(turn.imag, turn.real)) * _HZ_PER_RAD
    freq_ok = np.all(dev_hz <= _MAX_DEV_HZ[best], axis=2)
    ma = _along(mag, best)
    mb = _along(mag, best, 2)
    balance_ok = np.all(np.minimum(ma, mb) >= _BALANCE * np.maximum(ma, mb), axis=2)
    code = (row * 4 + (col - 4) + 1).astype(np.int8)
    cands = np.where(level_ok & freq_ok & balance_ok, code, np.int8(0))
    twist_ok = (pc < pr * _REVERSE_TWIST) & (pc * _NORMAL_TWIST > pr)
    fraction_ok = (pr + pc) > _TO_TOTAL * energy
    hits = np.where(twist_ok & fraction_ok, cands, np.int8(0))
    return hits, cands


@dataclass(slots=True)
class _Channel:
    """Per-slot state that changes only on events (Python objects, touched by few rows)."""

    sp_t: int = 0  # time of spandsp's last report, in samples since open
    sp: int = 0  # spandsp's key (index + 1) as combined: 0 when off or vetoed
    nq: int = 0  # the numpy side's key as combined
    nq_in: int = 0  # numpy side's state machine: declared key
    nq_h1: int = 0  # numpy side's state machine: hits of the two previous windows
    nq_h2: int = 0
    key: int = 0  # key being reported (index + 1), 0 between keys
    last_key: int = 0  # the key before, for bridging
    key_off_t: int = -(10**9)  # when it ended
    # Runs of consecutive numpy hit windows (times are window ends): the current run and
    # the last window of the run before it, to measure breaks.
    run_key: int = 0
    run_first_t: int = -(10**9)
    run_last_t: int = -(10**9)
    prev_key: int = 0
    prev_last_t: int = -(10**9)
    sp_off_key: int = 0  # key spandsp last ended, and when
    sp_off_t: int = -(10**9)
    events: list[tuple[int, int, int]] = field(default_factory=list)  # (t, source, code)


class DtmfBank:
    """In-band DTMF detectors for many channels, fed one (N,160) int16 block per 20 ms tick."""

    def __init__(self) -> None:
        self._lib = spandsp.load()
        self._rx = self._lib.dtmf_rx
        self._states: list[int] = []  # spandsp state per slot (0 = free)
        self._chans: list[_Channel | None] = []
        self._free: list[int] = []
        self._carry = np.zeros((0, _CARRY), dtype=np.float32)
        self._t = np.zeros(0, dtype=np.int64)  # samples fed per slot
        self._row = np.zeros(0, dtype=np.intp)  # slot -> row of the block being processed
        self._unsettled: set[int] = set()  # slots whose numpy state machine is not at rest
        # Feeding spandsp only where it can matter (SP_HOLD): per slot, when the gate was
        # last open, samples not fed since spandsp's last report, and spandsp in a key.
        self._gate_t = np.zeros(0, dtype=np.int64)
        self._sp_skipped = np.zeros(0, dtype=np.int64)
        self._sp_in_key = np.zeros(0, dtype=np.bool_)
        self._sp_last = np.zeros((0, _N), dtype=np.int16)  # the frame a row skipped last
        self._sp_behind = np.zeros(0, dtype=np.bool_)  # the row skipped its last frame
        self._sp_events: list[tuple[int, int, int]] = []
        events = self._sp_events  # closed over, not self: no cycle through the C thunk

        def report(user_data: int | None, code: int, _level: int, duration: int) -> None:
            events.append(((user_data or 0) - 1, code, duration))

        # One thunk serves every slot; user_data carries slot + 1 (NULL arrives as None).
        # It must outlive every spandsp state that holds it: it lives as long as the bank.
        self._on_tone = spandsp.TONE_REPORT_CB(report)

    def _grow(self) -> None:
        old = len(self._states)
        extra = max(16, old)
        self._carry = np.concatenate((self._carry, np.zeros((extra, _CARRY), np.float32)))
        self._t = np.concatenate((self._t, np.zeros(extra, np.int64)))
        self._row = np.concatenate((self._row, np.full(extra, -1, np.intp)))
        self._gate_t = np.concatenate((self._gate_t, np.zeros(extra, np.int64)))
        self._sp_skipped = np.concatenate((self._sp_skipped, np.zeros(extra, np.int64)))
        self._sp_in_key = np.concatenate((self._sp_in_key, np.zeros(extra, np.bool_)))
        self._sp_last = np.concatenate((self._sp_last, np.zeros((extra, _N), np.int16)))
        self._sp_behind = np.concatenate((self._sp_behind, np.zeros(extra, np.bool_)))
        self._states.extend([0] * extra)
        self._chans.extend([None] * extra)
        self._free.extend(reversed(range(old, old + extra)))

    def open(self) -> int:
        """Allocate a channel slot (freed slots are reused)."""
        if not self._free:
            self._grow()
        state = self._lib.dtmf_rx_init(None, spandsp.NO_DIGITS_CB, None)
        if not state:
            raise MemoryError("spandsp dtmf_rx_init returned NULL")
        slot = self._free.pop()
        # filter_dialtone off: the band-stop in front does that job, for 450 Hz.
        self._lib.dtmf_rx_parms(state, 0, SPANDSP_TWIST_DB, SPANDSP_REVERSE_TWIST_DB, -99)
        self._lib.dtmf_rx_set_realtime_callback(state, self._on_tone, slot + 1)
        self._states[slot] = state
        self._chans[slot] = _Channel()
        self._carry[slot] = 0
        self._t[slot] = 0
        self._gate_t[slot] = -SP_HOLD - 1
        self._sp_skipped[slot] = 0
        self._sp_in_key[slot] = False
        self._sp_behind[slot] = False
        return slot

    def close(self, slot: int) -> None:
        """Free the slot's spandsp state; idempotent."""
        if 0 <= slot < len(self._states) and self._states[slot]:
            self._lib.dtmf_rx_free(self._states[slot])
            self._states[slot] = 0
            self._chans[slot] = None
            self._unsettled.discard(slot)
            self._free.append(slot)

    def in_key(self, slot: int) -> bool:
        """Whether a key's tones may still be sounding on ``slot``: the key reported (by
        either detector) has not ended, or ended so recently that its tone coming back
        would be the same press (a break Q.24 bridges). spandsp's own state alone drops
        for a frame or two inside a long press, and never holds a tone 1.5 % off that
        the numpy side accepts."""
        ch = self._chans[slot]
        if ch is None:
            return False
        if ch.key:
            return True
        return bool(ch.last_key) and int(self._t[slot]) - ch.key_off_t <= BRIDGE_AFTER_SEEN

    def __del__(self) -> None:
        # The engine closes its slots; this frees whatever a caller left open.
        lib = getattr(self, "_lib", None)
        for state in getattr(self, "_states", ()):
            if state and lib is not None:
                lib.dtmf_rx_free(state)

    def process(
        self, slots: Sequence[int] | npt.NDArray[np.integer], block: np.ndarray
    ) -> list[tuple[int, str]]:
        """block[i] is the frame of channel slots[i]; returns (i, digit) for each key whose onset
        was detected in this frame, in order."""
        idx = np.asarray(slots, dtype=np.intp).reshape(-1)
        n = len(idx)
        if block.shape != (n, _N) or block.dtype != np.int16:
            raise ValueError(
                f"expected an ({n}, {_N}) int16 block for {n} slots, got {block.dtype} of "
                f"shape {block.shape}"
            )
        if n == 0:
            return []
        if idx.min() < 0 or idx.max() >= len(self._states):
            raise ValueError(f"slots must be in 0..{len(self._states) - 1}, got {idx.tolist()}")
        slot_list = idx.tolist()
        states = [self._states[s] for s in slot_list]
        if not all(states):
            bad = [s for s, st in zip(slot_list, states, strict=True) if not st]
            raise ValueError(f"slots {bad} are not open")
        if len(set(slot_list)) != n:
            raise ValueError(f"a slot appears twice in one block: {sorted(slot_list)}")

        carry = self._carry[idx]
        # seg = [last 40 filtered samples | this frame filtered | new notch state]
        seg = np.empty((n, _HOP + _N + _NOTCH_STATE), np.float32)
        seg[:, :_HOP] = carry[:, _C_TAIL]
        xs = np.empty((n, _N + _NOTCH_STATE), np.float32)
        xs[:, :_N] = block
        xs[:, _N:] = carry[:, _C_NOTCH]
        np.matmul(xs, _NOTCH_M, out=seg[:, _HOP:])
        y = seg[:, _HOP : _HOP + _N]
        # The band-stop can overshoot a full-scale input (np.clip, without its wrapper).
        np.minimum(y, 32767, out=y)
        np.maximum(y, -32768, out=y)
        y16 = y.astype(np.int16)

        hits, cands, new_h, new_m, new_e, gated = _analyse(
            seg[:, : _HOP + _N],
            carry[:, _C_HALVES].view(np.complex64).reshape(n, 2, 8),
            carry[:, _C_MAGS].reshape(n, 2, 8),
            carry[:, _C_ENERGY],
        )

        # spandsp, one row at a time by address, on the rows where it can matter (SP_HOLD);
        # its reports land in self._sp_events.
        t = self._t[idx]
        if gated.any():
            self._gate_t[idx[gated]] = t[gated]
        live = (t - self._gate_t[idx] <= SP_HOLD) | self._sp_in_key[idx]
        self._sp_events.clear()
        base = y16.ctypes.data
        behind = live & self._sp_behind[idx]
        if behind.any():
            rows = np.nonzero(behind)[0]
            back = self._sp_last[idx[rows]]
            self._sp_skipped[idx[rows]] -= _N  # fed after all
            self._sp_behind[idx[rows]] = False
            addrs_back = range(back.ctypes.data, back.ctypes.data + len(rows) * 2 * _N, 2 * _N)
            fed_back = [states[i] for i in rows.tolist()]
            for _ in map(self._rx, fed_back, addrs_back, itertools.repeat(_N, len(rows))):
                pass
        if live.all():
            addrs: Sequence[int] = range(base, base + n * 2 * _N, 2 * _N)
            fed = states
        else:
            skip = idx[~live]
            self._sp_skipped[skip] += _N
            self._sp_last[skip] = y16[~live]
            self._sp_behind[skip] = True
            rows = np.nonzero(live)[0]
            addrs = (base + rows * (2 * _N)).tolist()
            fed = [states[i] for i in rows.tolist()]
        for _ in map(self._rx, fed, addrs, itertools.repeat(_N, len(fed))):
            pass
        prev_cands = carry[:, _C_CANDS].astype(np.int8)
        carry[:, _C_NOTCH] = seg[:, _HOP + _N :]
        carry[:, _C_TAIL] = seg[:, _N : _HOP + _N]
        carry[:, _C_HALVES] = new_h.reshape(n, 2 * 8).view(np.float32)
        carry[:, _C_MAGS] = new_m.reshape(n, 2 * 8)
        carry[:, _C_ENERGY] = new_e
        carry[:, _C_CANDS] = cands
        self._carry[idx] = carry

        out = self._events(idx, slot_list, hits, cands, prev_cands)
        self._t[idx] += _N
        return out

    def _events(
        self,
        idx: npt.NDArray[np.intp],
        slot_list: list[int],
        hits: Int8s,
        cands: Int8s,
        prev_cands: Int8s,
    ) -> list[tuple[int, str]]:
        """Python only for rows with something going on: a numpy hit, a spandsp report, or
        a numpy state machine not yet back at rest."""
        busy = np.nonzero(hits.any(axis=1))[0].tolist()
        if self._sp_events or self._unsettled:
            self._row[idx] = np.arange(len(idx))
            for slot, code, dur in self._sp_events:
                ch = self._chans[slot]
                assert ch is not None
                # The samples the row skipped (SP_HOLD) passed before this report.
                ch.sp_t += dur + int(self._sp_skipped[slot])
                self._sp_skipped[slot] = 0
                self._sp_in_key[slot] = code != 0
                ch.events.append((ch.sp_t, _SP, code))
                busy.append(int(self._row[slot]))
            busy.extend(int(self._row[s]) for s in self._unsettled)
            self._row[idx] = -1
        out: list[tuple[int, str]] = []
        for i in sorted(set(busy)):
            if i < 0:
                continue  # an unsettled slot not fed this tick
            slot = slot_list[i]
            ch = self._chans[slot]
            assert ch is not None
            _numpy_events(ch, int(self._t[slot]), hits[i].tolist())
            if ch.nq_in or ch.nq_h1 or ch.nq_h2:
                self._unsettled.add(slot)
            else:
                self._unsettled.discard(slot)
            if ch.events:
                _combine(ch, i, cands[i].tolist() + prev_cands[i].tolist(), out)
        return out


def _numpy_events(ch: _Channel, t0: int, hits: list[int]) -> None:
    """The numpy side's key state over one frame's four windows: on after _ON_WINDOWS
    agreeing hits, off after two windows without the key (as spandsp does with blocks)."""
    for w, hit in enumerate(hits):
        t = t0 + (w + 1) * _HOP
        if ch.nq_in and hit != ch.nq_in and ch.nq_h2 != ch.nq_in:
            ch.events.append((t, _NQ, 0))
            ch.nq_in = 0
        if not ch.nq_in and hit and hit == ch.nq_h2 and (_ON_WINDOWS == 2 or hit == ch.nq_h1):
            ch.events.append((t, _NQ, hit))
            ch.nq_in = hit
        if hit:
            ch.events.append((t, _SEEN, hit))
        ch.nq_h1, ch.nq_h2 = ch.nq_h2, hit


def _combine(ch: _Channel, i: int, cands: list[int], out: list[tuple[int, str]]) -> None:
    """Fold both detectors' on/off reports, in time order, into key onsets."""
    ch.events.sort()  # by time; at one instant spandsp, then numpy, then 'seen'
    for t, src, code in ch.events:
        if src == _SEEN:
            if code == ch.run_key and t - ch.run_last_t == _HOP:
                ch.run_last_t = t
            else:
                ch.prev_key, ch.prev_last_t = ch.run_key, ch.run_last_t
                ch.run_key, ch.run_first_t, ch.run_last_t = code, t, t
            continue
        if src == _SP:
            key = _SPANDSP_CODE.get(code, 0)
            if key and cands.count(key) < _VOUCH_WINDOWS:
                key = 0  # vetoed: the numpy side measures no such key here
            if not key and ch.sp:
                ch.sp_off_key, ch.sp_off_t = ch.sp, t
            ch.sp, other = key, ch.nq
        else:
            key = code
            ch.nq, other = key, ch.sp
        if key:
            if key == ch.key:
                continue
            if not ch.key and key == ch.last_key and _bridged(ch, key, t):
                ch.key = key  # a break inside one tone, not a new press
                continue
            ch.key = key
            out.append((i, KEYS[key - 1]))
        elif ch.key and not other:
            ch.last_key, ch.key, ch.key_off_t = ch.key, 0, t
    ch.events.clear()


def _bridged(ch: _Channel, key: int, t: int) -> bool:
    """Whether a same-key onset at ``t`` continues the key that just ended."""
    if ch.run_key == key and t - ch.run_last_t <= _HOP:
        # The numpy side sees the key again: the break is the hole between its runs.
        return ch.prev_key == key and ch.run_first_t - ch.prev_last_t <= BRIDGE_RUN_GAP
    if ch.run_key == key:
        # spandsp is back first: the tone has been gone at most this long.
        return t - ch.run_last_t <= BRIDGE_AFTER_SEEN
    return ch.sp_off_key == key and t - ch.sp_off_t <= BRIDGE_AFTER_SPANDSP_OFF


class DtmfDetector:
    """One channel's detector, fed any number of samples at a time."""

    def __init__(self) -> None:
        self._bank = DtmfBank()
        self._slot = self._bank.open()
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, samples: np.ndarray) -> list[str]:
        """Keys whose onset falls in ``samples`` (int16); a partial frame waits for more."""
        data = np.concatenate((self._pending, np.asarray(samples, dtype=np.int16).ravel()))
        whole = len(data) // _N * _N
        self._pending = data[whole:].copy()
        slots = [self._slot]
        return [
            d
            for frame in data[:whole].reshape(-1, 1, _N)
            for _, d in self._bank.process(slots, frame)
        ]

    def close(self) -> None:
        self._bank.close(self._slot)

    def __enter__(self) -> DtmfDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_digits(samples: np.ndarray) -> str:
    """All keys in a whole signal (int16 samples), in order."""
    with DtmfDetector() as det:
        # Two frames of silence after the end, so a tone ending the signal is still judged.
        return "".join(det.feed(samples) + det.feed(np.zeros(2 * _N, np.int16)))


def detect_dtmf_file(path: str | Path) -> str:
    """Keys in an 8 kHz 16-bit mono WAV file; raises WavFormatError for any other format,
    and for a file cut short of the audio its header declares (the keys at its end would
    be missing from the answer without a word)."""
    return detect_digits(read_slin(path, complete=True))


class DigitMerger:
    """Merges in-band digits with out-of-band ones (AudioSocket kind 0x03) for one call so a key
    reported by both paths is reported once. Times are in samples of the call's stream.

    In-band detection reports a key as its tones start; Asterisk sends kind 0x03 when the
    key is released, however long it was held. So while the tones go on, :meth:`held`
    moves the in-band report's time along with them, and the window is counted from
    the end of the key, not its start."""

    def __init__(self, window_samples: int = 2400) -> None:
        if window_samples < 0:
            raise ValueError(f"window_samples must be >= 0, got {window_samples}")
        self.window = window_samples
        # Per path, keys reported and still able to absorb one matching key from the other.
        self._open: dict[bool, list[tuple[str, int]]] = {True: [], False: []}

    def _report(self, digit: str, t: int, inband: bool) -> bool:
        other = self._open[not inband]
        other[:] = [(d, s) for d, s in other if abs(t - s) <= self.window]
        for j, (d, _) in enumerate(other):
            if d == digit:
                del other[j]  # the other path's report of this same key: absorb it once
                return False
        mine = self._open[inband]
        mine[:] = [(d, s) for d, s in mine if abs(t - s) <= self.window]
        mine.append((digit, t))
        return True

    def inband(self, digit: str, t: int) -> bool:
        """True: report it (first of the pair)."""
        return self._report(digit, t, True)

    def held(self, t: int) -> None:
        """The in-band key reported last is still sounding at ``t``."""
        mine = self._open[True]
        if mine:
            mine[-1] = (mine[-1][0], t)

    @property
    def inband_open(self) -> bool:
        """An in-band key may still be matched by its out-of-band report."""
        return bool(self._open[True])

    def outofband(self, digit: str, t: int) -> bool:
        """True: report it."""
        return self._report(digit, t, False)
