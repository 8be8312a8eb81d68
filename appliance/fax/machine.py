"""A simulated fax machine: a :class:`~drivers.sim.CallerBot` whose audio is a spandsp fax.

Tests and the fax benchmark put one on the far end of a simulated line: it dials the box
and presses Start (to receive, or to poll), or it is the subscriber the box dials for a
callback fax and answers as a receiver. Every page it receives lands in ``rx_file``, so a
test can compare it pixel for pixel with what was rendered. ``noise_rms`` adds white noise
to both directions of its line, as a noisy local loop would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from appliance.fax.session import ALL_MODEMS, FaxResult, FaxSession
from appliance.media.frame import SILENCE
from drivers.base import Direction
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import TICKS_PER_SECOND

SIGNAL_MIN_POWER = 100.0**2  # about -50 dBFS: below this a frame is a pause, not signal


class FaxMachine(CallerBot):
    """One fax machine on the simulated exchange.

    ``answer_role``: when the box calls this machine it starts receiving at once (T.30
    answering role). :meth:`press_start` starts a session by hand on a call it made.
    """

    def __init__(self, exchange: SimExchange, number: str, rx_file: Path, *,
                 noise_rms: float = 0.0, seed: int = 0, ecm: bool = True,
                 modems: int = ALL_MODEMS, name: str = "fax") -> None:
        super().__init__(exchange, number, name)
        self.rx_file = rx_file
        self.noise_rms = noise_rms
        self.ecm = ecm
        self.modems = modems
        self.session: FaxSession | None = None
        self.answer_role = True
        self.start_delay = 0.0  # seconds a person waits before pressing Start (for tests)
        self._rng = np.random.default_rng(seed)
        # Level of the fax signal received (frames above the squelch's idea of silence),
        # before the line noise is added: what the benchmark sets its S/N against.
        self.signal_power = 0.0
        self.signal_frames = 0
        self._done: asyncio.Future[FaxResult] | None = None

    def press_start(self, *, calling_party: bool = False, tx_file: Path | None = None,
                    ) -> None:
        """Start the machine's fax session on the current call: receive into ``rx_file``
        (``calling_party`` False: an ordinary receive; True: poll for a document), or send
        ``tx_file``."""
        if self.session is not None:
            self.session.close()
        self.session = FaxSession(calling_party=calling_party, tx_file=tx_file,
                                  rx_file=None if tx_file else self.rx_file, ecm=self.ecm,
                                  modems=self.modems)
        self._done = asyncio.get_running_loop().create_future()

    async def wait_fax(self, timeout: float = 300.0) -> FaxResult | None:
        """The session's result once it ends (None on timeout or if none was started)."""
        if self._done is None:
            return None
        if not self._done.done():
            waits: set[asyncio.Future[Any]] = {
                self._done, self._wait_ticks(round(timeout * TICKS_PER_SECOND))}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return self._done.result() if self._done.done() else None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()

    # ------------------------------------------------------------------ the line
    def on_answered(self) -> None:
        super().on_answered()
        line = self.line
        if self.answer_role and line is not None and line.direction is Direction.OUTBOUND:
            # The box called us: answer as a receiving fax machine.
            self.press_start(calling_party=False)

    def produce(self) -> bytes:
        session = self.session
        if session is None:
            return self._noisy(super().produce())
        frame = session.tx()
        self._check_done()
        return self._noisy(frame if frame is not None else SILENCE)

    def receive(self, frame: bytes) -> None:
        session = self.session
        if session is None:
            super().receive(frame)
            return
        x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        power = float(np.dot(x, x)) / len(x)
        if power > SIGNAL_MIN_POWER:
            self.signal_power += power
            self.signal_frames += 1
        session.rx(self._noisy(frame))
        self._check_done()

    def on_remote_hangup(self, cause: str) -> None:
        session = self.session
        if session is not None and session.result is None:
            session.abort(f"the box hung up ({cause})")
        self._check_done()
        super().on_remote_hangup(cause)

    def _check_done(self) -> None:
        session, done = self.session, self._done
        if session is not None and session.result is not None and done is not None \
                and not done.done():
            done.set_result(session.result)

    def _noisy(self, frame: bytes) -> bytes:
        if not self.noise_rms:
            return frame
        noise = self._rng.normal(0.0, self.noise_rms, len(frame) // 2)
        x = np.frombuffer(frame, dtype="<i2") + noise
        return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
