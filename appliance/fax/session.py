"""One T.30 fax session as a frame processor: 20 ms frames in, 20 ms frames out.

:class:`FaxSession` wraps a spandsp fax terminal in the shape a call's raw media hook
wants: :meth:`FaxSession.rx` takes each inbound frame, :meth:`FaxSession.tx` returns the
next outbound frame and None once the session is over. Time is the count of samples
processed, never a clock, so a session runs as fast as frames are handed to it. It offers
V.17 (14 400 bit/s) and lets spandsp fall back to V.29 (9 600) and V.27ter (4 800) when
training fails, with ECM and T.6/T.4 compression. Received frames pass a squelch first
(see :class:`Squelch`). Given a ``trace``, a session hands it spandsp's own log lines,
each led by the session's line time in seconds. A calling session also measures the line
before the far end's DIS arrives and leaves V.17 out on a noisy one (see
:data:`V17_MIN_SNR_DB`). At phase E it keeps what spandsp reports as a :class:`FaxResult`:
pages, bit rate, the completion code with spandsp's words for it, and the line time
taken. A session that waited in the calling role and heard the far machine's calling tone
(CNG) instead of a DIS says so: both ends were calling.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np

from appliance.media import spandsp
from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, SAMPLES_PER_FRAME

log = logging.getLogger("appliance.fax")

ALL_MODEMS: Final = spandsp.T30_SUPPORT_V17 | spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V27TER
COMPRESSIONS: Final = spandsp.T30_SUPPORT_T4_1D | spandsp.T30_SUPPORT_T4_2D | spandsp.T30_SUPPORT_T6
#: frames sent after phase E, so the DCN that ended the session leaves the line whole
TAIL_FRAMES: Final = 25
#: a session still running after this long is aborted (spandsp's own timers end sooner)
MAX_SECONDS: Final = 20 * 60.0
#: a frame is CNG when this share of its energy is at 1100 Hz
CNG_FRACTION: Final = 0.8
CNG_MIN_RMS: Final = 100.0  # about -50 dBFS
#: completion codes that mean the far end never answered as a fax terminal (T0/T1 expired)
NO_FIRST_MESSAGE: Final = (2, 3)

#: squelch: a frame this far above the quietest frame of the last minute is signal
SQUELCH_MARGIN_DB: Final = 8.0
SQUELCH_WINDOW_FRAMES: Final = 3000
#: samples (1 ms) in which the squelch finds where a signal starts within its first frame
ONSET_BLOCK: Final = 8

#: below this signal-to-noise ratio a calling session offers V.29 and V.27ter only.
#: Measured with spandsp 0.0.6 at both ends, 20 one-page faxes each, noise on the image
#: direction: V.17 lost 1 page at 44 dB S/N, 6 at 35 dB, 7 at 29 dB and 3 at 20 dB (the
#: receiver misses the image carrier after a good training check, and ECM cannot recover
#: a page never heard), while V.29 lost none of 40 at 20 dB. Spandsp's own fallback reacts
#: only to a failed training check, which these lines pass.
V17_MIN_SNR_DB: Final = 30.0
V17_FREE: Final = spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V27TER
#: frames of each kind needed before the line's S/N is believed
SNR_MIN_FRAMES: Final = 3

_SILENT = bytes(FRAME_BYTES)


class Squelch:
    """Zero the received frames that hold only line noise.

    spandsp 0.0.6's modem receivers take anything above about -45 dBm0 as carrier, and its
    fax layer has no call to raise that cut-off. On a line whose noise sits above it (20 dB
    below a -14 dBm0 fax signal is -34 dBm0) the V.21 receiver never sees the carrier drop,
    the T.30 timers that start on a drop never run, and a session hangs: measured, not
    one of 20 pages got through. T.30 is half duplex with a gap of at least 75 ms between
    transmissions, so the quietest frame of the last minute is the line's noise; a frame
    less than :data:`SQUELCH_MARGIN_DB` above it carries no signal and is passed on as
    digital silence. Signal frames pass untouched, noise and all, except the first of a
    signal: the noise ahead of the signal in it is zeroed too, to the millisecond (see
    :func:`_gate_onset`), so the receiver's carrier comes on with the far end's.
    """

    __slots__ = ("_frame", "_mins", "_was_signal", "noise_frames", "power", "signal_frames",
                 "signal_power")

    def __init__(self) -> None:
        self._mins: deque[tuple[int, float]] = deque()  # ascending powers: a sliding min
        self._frame = 0
        self.power = 0.0  # of the last frame
        self.signal_power = 0.0  # sum over the frames passed as signal
        self.signal_frames = 0
        self.noise_frames = 0
        self._was_signal = False

    @property
    def floor(self) -> float:
        """Mean power of the line noise: the sliding minimum sits about 1.5 dB under it
        for 160-sample frames of white noise."""
        return self._mins[0][1] * 1.4 if self._mins else 0.0

    def snr_db(self) -> float | None:
        """Signal to noise of the line so far, once enough of both was heard."""
        if self.signal_frames < SNR_MIN_FRAMES or self.noise_frames < SNR_MIN_FRAMES:
            return None
        floor = self.floor
        if floor <= 0.0:
            return math.inf  # digital silence between signals: no noise at all
        return 10 * math.log10(self.signal_power / self.signal_frames / floor)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = samples.astype(np.float64)
        power = float(np.dot(x, x)) / len(x)
        mins = self._mins
        while mins and mins[-1][1] >= power:
            mins.pop()
        mins.append((self._frame, power))
        self._frame += 1
        if mins[0][0] <= self._frame - SQUELCH_WINDOW_FRAMES:
            mins.popleft()
        self.power = power
        threshold = mins[0][1] * _MARGIN
        if power <= threshold:  # <=: digital silence is no signal either
            self.noise_frames += 1
            self._was_signal = False
            return np.zeros(len(samples), dtype=np.int16)
        self.signal_power += power
        self.signal_frames += 1
        if self._was_signal:
            return samples
        self._was_signal = True
        return _gate_onset(samples, x, threshold)


_MARGIN = 10 ** (SQUELCH_MARGIN_DB / 10)


def _gate_onset(samples: np.ndarray, x: np.ndarray, threshold: float) -> np.ndarray:
    """The first frame of a signal, with the noise ahead of the signal zeroed: everything
    before its first :data:`ONSET_BLOCK` samples louder than the squelch's threshold.

    Passed whole, that noise is "carrier" up to a frame (20 ms) ahead of the real one, and
    spandsp's high-speed receivers time their training from carrier-on. V.29 opens with
    20 ms of silence (segment 1) before its ABAB segment, so the receiver's carrier could
    come on up to 40 ms before ABAB; its symbol acquisition (60 bauds, 25 ms) and the
    13 bauds it waits before looking for the ABAB-to-CDCD phase reversal then ran out on
    noise, it took a phase jump of the noise for the reversal (its "Coarse carrier" one or
    two frames early), trained on a misaligned CDCD and failed: constellation mismatch 759
    and 773 where 96 passes and good trainings read 4 to 9. It then stays parked through
    the whole image. Seen on the 2 of 50 pages lost with seed 1 of ``appliance bench
    fax``; the same calls train (mismatch 7.6 and 9.0) with the noise zeroed. A carrier
    detector with a threshold above the line noise (a real machine's; spandsp's own on a
    quiet line) comes on within a millisecond or two of the carrier.
    """
    n = len(x) - len(x) % ONSET_BLOCK
    blocks = x[:n].reshape(-1, ONSET_BLOCK)
    loud = np.flatnonzero(np.einsum("ij,ij->i", blocks, blocks) > threshold * ONSET_BLOCK)
    if not len(loud) or loud[0] == 0:
        return samples
    out = samples.copy()
    out[:loud[0] * ONSET_BLOCK] = 0
    return out


@dataclass(frozen=True)
class FaxResult:
    ok: bool
    code: int  # spandsp's T.30 completion code (0 is success)
    reason: str  # spandsp's words for it, plus what the session saw
    pages: int  # pages sent (transmitting) or received (receiving)
    bit_rate: int  # of the image data, bit/s (0 when no page phase was reached)
    ecm: bool
    seconds: float  # line time from the first frame to phase E
    far_ident: str = ""
    line_snr_db: float | None = None  # as measured before the far end's DIS (calling side)


class FaxSession(spandsp.Closable):
    """A fax terminal fed frame by frame; give it a ``tx_file`` to send, ``rx_file`` to receive.

    ``calling_party`` is the T.30 role, not the call's direction: the side that sends CNG
    and waits for the other's DIS. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, *, calling_party: bool, tx_file: Path | None = None,
                 rx_file: Path | None = None, ecm: bool = True, modems: int = ALL_MODEMS,
                 ident: str = "", max_seconds: float = MAX_SECONDS,
                 adapt_to_line: bool = True,
                 trace: Callable[[str], None] | None = None) -> None:
        if (tx_file is None) == (rx_file is None):
            raise ValueError("a fax session needs exactly one of tx_file and rx_file")
        if tx_file is not None and not tx_file.is_file():
            raise FileNotFoundError(f"fax document {tx_file} does not exist")
        self.calling_party = calling_party
        self.sending = tx_file is not None
        self._end: spandsp.FaxEndpoint | None = spandsp.FaxEndpoint(calling_party)
        self._end.configure(modems=modems, compressions=COMPRESSIONS, ecm=ecm)
        if ident:
            self._end.set_ident(ident)
        if tx_file is not None:
            self._end.set_tx_file(str(tx_file))
        if rx_file is not None:
            rx_file.parent.mkdir(parents=True, exist_ok=True)
            self._end.set_rx_file(str(rx_file))
        self._end.on_phases(self._phase_b, self._phase_d, self._phase_e)
        if trace is not None:
            # spandsp's own clock in the lines is not set; the session's line time is.
            handler = trace
            self._end.trace(lambda text: handler(f"{self.samples / SAMPLE_RATE:8.2f} {text}"))
        self._max_samples = int(max_seconds * SAMPLE_RATE)
        self.samples = 0
        self.pages_done = 0
        self.negotiated = False  # phase B reached: the far end spoke T.30
        self.cng_frames = 0  # far-end frames that were a calling tone
        self.result: FaxResult | None = None
        self._tail = TAIL_FRAMES
        self._squelch = Squelch()
        # Only the calling side can still choose after hearing the line: it answers the
        # far end's DIS with its DCS. The answering side's DIS goes out before that.
        self._adapt = adapt_to_line and calling_party and bool(modems & ~V17_FREE)
        self._modems = modems
        self.line_snr_db: float | None = None

    # ------------------------------------------------------------------ frames
    def rx(self, frame: bytes) -> None:
        if self.result is not None or self._end is None:
            return
        samples = np.frombuffer(frame, dtype="<i2")
        if not self.negotiated and self.calling_party and _is_cng(samples):
            self.cng_frames += 1
        self._end.rx(self._squelch(samples))
        if self._adapt and not self.negotiated:
            self._measure_line()
        self.samples += len(samples)
        if self.samples >= self._max_samples and self.result is None:
            log.warning("fax session still running after %.0f s; aborting",
                        self.samples / SAMPLE_RATE)
            self._end.terminate()

    def tx(self) -> bytes | None:
        """The next outbound frame; None once the session has ended and its tail is out."""
        if self.result is not None:
            if self._tail <= 0:
                return None
            self._tail -= 1
        end = self._end
        if end is None:
            return None
        return end.tx(SAMPLES_PER_FRAME).tobytes()

    @property
    def done(self) -> bool:
        return self.result is not None

    def abort(self, why: str) -> FaxResult:
        """The call ended under the session: let spandsp conclude, and keep ``why``."""
        if self.result is None and self._end is not None:
            self._end.terminate()  # runs phase E: "The call dropped prematurely"
            if self.result is not None:
                self.result = replace(self.result, reason=f"{self.result.reason}; {why}")
        if self.result is None:
            self._finish(-1, f"aborted: {why}")
        assert self.result is not None
        return self.result

    def _measure_line(self) -> None:
        snr = self._squelch.snr_db()
        if snr is None:
            return
        self.line_snr_db = snr
        if snr < V17_MIN_SNR_DB and self._end is not None:
            log.info("fax line S/N %.1f dB < %.0f dB: offering V.29 and V.27ter only", snr,
                     V17_MIN_SNR_DB)
            self._end.set_modems(self._modems & V17_FREE)
            self._adapt = False

    # ------------------------------------------------------------------ spandsp callbacks
    def _phase_b(self, result: int) -> None:
        self.negotiated = True
        self._adapt = False

    def _phase_d(self, result: int) -> None:
        self.pages_done += 1
        log.debug("fax page %d %s", self.pages_done, "sent" if self.sending else "received")

    def _phase_e(self, code: int) -> None:
        reason = spandsp.completion_text(code)
        if (code in NO_FIRST_MESSAGE and self.calling_party and not self.negotiated
                and self.cng_frames >= 10):
            reason += ("; the far machine sent a calling tone (CNG) too: both ends were "
                       "calling. It must press Start to receive, or poll (DTC) for the "
                       "box to answer")
        self._finish(code, reason)

    def _finish(self, code: int, reason: str) -> None:
        if self.result is not None:
            return
        stats = self._end.statistics() if self._end is not None else None
        pages = 0
        if stats is not None:
            pages = stats.pages_tx if self.sending else stats.pages_rx
        self.result = FaxResult(
            ok=code == spandsp.T30_ERR_OK, code=code, reason=reason, pages=pages,
            bit_rate=stats.bit_rate if stats is not None and pages else 0,
            ecm=bool(stats.error_correcting_mode) if stats is not None else False,
            seconds=self.samples / SAMPLE_RATE,
            far_ident=self._end.far_ident() if self._end is not None else "",
            line_snr_db=None if self.line_snr_db is None else round(self.line_snr_db, 1))
        log.info("fax %s ended: %s (code %d), %d page(s) at %d bit/s%s in %.1f s",
                 "send" if self.sending else "receive", reason, code, pages,
                 self.result.bit_rate, " ECM" if self.result.ecm else "", self.result.seconds)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        end, self._end = self._end, None
        if end is not None:
            if self.result is None:
                end.terminate()
            end.close()


_N = np.arange(SAMPLES_PER_FRAME)
_CNG_PROBE = np.exp(-2j * np.pi * 1100.0 * _N / SAMPLE_RATE)


def _is_cng(samples: np.ndarray) -> bool:
    """Most of the frame's energy at 1100 Hz (the calling tone a sending machine beeps)."""
    x = samples.astype(np.float64)
    energy = float(np.dot(x, x))
    if energy < CNG_MIN_RMS**2 * len(x):
        return False
    # |DFT at 1100 Hz|² × 2/N is the energy of a sinusoid at that frequency.
    tone = abs(complex(np.dot(x, _CNG_PROBE))) ** 2 * 2 / len(x)
    return tone >= CNG_FRACTION * energy
