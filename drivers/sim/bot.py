"""CallerBot: a simulated person on the far end of a simulated line.

It dials the box (or answers when the box calls it), keys DTMF as real audio tones, speaks
recorded audio, listens and keeps everything it heard, and hangs up. Tests assert on what
it heard (digits decoded from tones, prompts, call-progress tones), exactly as a caller
would notice them. Its waits are counted in the exchange's ticks, so it runs as fast as the
engine's clock lets it: instantly on the manual clock, in real time on the real one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.media.frame import FRAME_BYTES, SAMPLE_RATE, SAMPLES_PER_FRAME, SILENCE, chunk_pcm
from appliance.media.tones import ToneSource, dtmf_sequence
from drivers.base import LineError, LineState
from drivers.sim.exchange import TICKS_PER_SECOND, SimExchange, SimLine, TrunksBusy

#: how much of a key's tone a detector needs before it reports the key (40 ms: Q.24)
KEY_HEARD_MS = 40


class CallerBot:
    """One simulated phone. ``heard`` holds every byte the engine sent it while connected."""

    def __init__(self, exchange: SimExchange, number: str = "13800138000",
                 name: str = "caller") -> None:
        self.exchange = exchange
        self.number = number
        self.name = name
        self.line: SimLine | None = None
        self.heard = bytearray()
        self.hangup_cause: str | None = None  # set when the far end (the box) hung up
        self._out: deque[bytes] = deque()
        self._produced = 0
        self._queued = 0
        self._tick = 0
        self._timers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._sent_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._local_tone: ToneSource | None = None  # heard from the exchange itself
        self._heard_waiters: list[tuple[bytes, int, asyncio.Future[None]]] = []
        self._answered: asyncio.Future[None] | None = None
        self._ended: asyncio.Future[str] | None = None

    # ------------------------------------------------------------------ actions
    async def dial(self, callee: str, timeout: float = 30.0) -> None:
        """Call the box; returns when the engine answered (raises LineError otherwise)."""
        answered, ended = self._new_call()
        try:
            self.line = self.exchange.dial_in(self, callee)
        except TrunksBusy as exc:
            # What a person hears when the exchange has no line free: congestion, until
            # they give up.
            self._local_tone = ToneSource("congestion")
            await self._guard(self._wait_ticks(3 * TICKS_PER_SECOND), allow_end=True)
            self._local_tone = None
            self._finish("congestion")
            raise LineError(f"{self.name}: {callee} gave congestion ({exc})") from exc
        waiter = self._wait_ticks(round(timeout * TICKS_PER_SECOND))
        waits: set[asyncio.Future[Any]] = {answered, waiter, ended}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not answered.done():
            if ended.done():  # the box hung up (rejected the call, or stopped)
                raise LineError(f"{self.name}: {callee} hung up before answering "
                                f"({ended.result()})")
            await self.hangup()
            raise LineError(f"{self.name}: {callee} did not answer within {timeout} s")

    async def press(self, digits: str, on_ms: int = 80, off_ms: int = 80,
                    level_dbm0: float = -7.0) -> None:
        """Key DTMF digits as audio tones; returns when the last tone has been sent (the
        pause after it goes out before anything sent next). A call the box ends during
        the last tone, once 40 ms of it (what a detector needs) went out, is no error:
        a flow may hang up the moment it hears its terminator key."""
        tones = dtmf_sequence(digits, on_ms, off_ms, level_dbm0)
        if not digits:
            return
        ms = SAMPLE_RATE // 1000
        last_end = len(tones) - off_ms * ms
        heard = last_end - on_ms * ms + min(on_ms, KEY_HEARD_MS) * ms
        frames = SAMPLES_PER_FRAME
        end = self._queue(tones)
        start = end - -(-len(tones) // frames)
        await self._guard(self._sent(start + -(-heard // frames)))
        await self._guard(self._sent(start + -(-last_end // frames)), allow_end=True)

    async def send(self, samples: npt.NDArray[np.int16] | bytes) -> None:
        """Send audio (speech, tones, fax...) toward the engine, paced one frame a tick;
        returns when it has all gone."""
        await self._guard(self._sent(self._queue(samples)))

    def _queue(self, samples: npt.NDArray[np.int16] | bytes) -> int:
        """Queue audio to send; the count of frames queued on this phone up to its end."""
        ended = self._ended
        if ended is None or ended.done():
            # Queued now, it would go out at the start of the next call.
            raise LineError(f"{self.name}: " + ("not in a call" if ended is None else
                                                f"the call ended ({ended.result()})"))
        pcm = samples if isinstance(samples, bytes) else np.asarray(samples, "<i2").tobytes()
        frames = chunk_pcm(pcm)
        self._out.extend(frames)
        self._queued += len(frames)
        return self._queued

    def _sent(self, position: int) -> asyncio.Future[None]:
        """A future done once the frames queued up to ``position`` have gone out."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sent_waiters, (position, next(self._seq), fut))
        return fut

    async def listen(self, seconds: float) -> npt.NDArray[np.int16]:
        """Wait ``seconds`` and return what was heard meanwhile."""
        start = len(self.heard)
        await self._guard(self._wait_ticks(round(seconds * TICKS_PER_SECOND)), allow_end=True)
        return np.frombuffer(bytes(self.heard[start:]), dtype="<i2").copy()

    async def wait(self, seconds: float) -> None:
        await self._guard(self._wait_ticks(round(seconds * TICKS_PER_SECOND)), allow_end=True)

    async def wait_for(self, pattern: bytes, timeout: float = 30.0) -> bool:
        """Wait until the caller has heard ``pattern`` (e.g. a prompt's or the beep's audio)
        since this call; False on timeout or when the call ended first."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._heard_waiters.append((pattern, len(self.heard), fut))
        await self._guard(self._race(fut, timeout), allow_end=True)
        return fut.done() and not fut.cancelled()

    async def wait_hangup(self, timeout: float = 60.0) -> str | None:
        """Wait for the box to hang up; returns its cause, or None on timeout."""
        if self._ended is None:
            raise LineError(f"{self.name}: not in a call")
        waiter = self._wait_ticks(round(timeout * TICKS_PER_SECOND))
        waits: set[asyncio.Future[Any]] = {self._ended, waiter}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return self._ended.result() if self._ended.done() else None

    async def hangup(self) -> None:
        line = self.line
        if line is not None and line.state is not LineState.ENDED:
            self.exchange.far_hangup(line)
        self._finish("caller hung up")

    # ------------------------------------------------------------------ what it heard
    def heard_samples(self) -> npt.NDArray[np.int16]:
        return np.frombuffer(bytes(self.heard), dtype="<i2").copy()

    def heard_tone(self) -> str:
        """Call-progress outcome of everything heard: busy, congestion, ringback, voice..."""
        from appliance.media.progress import detect_progress

        return detect_progress(self.heard_samples()).value

    def heard_digits(self) -> str:
        from appliance.media.dtmf import detect_digits

        return detect_digits(self.heard_samples())

    @property
    def connected(self) -> bool:
        line = self.line
        return (line is not None and line.connected and line.state is not LineState.ENDED
                and self.hangup_cause is None)

    # ------------------------------------------------------------------ exchange side
    def attach(self, line: SimLine) -> None:
        """The box called this bot and it answered."""
        self._new_call()
        self.line = line

    def receive(self, frame: bytes) -> None:
        self.heard += frame
        if self._heard_waiters:
            still = []
            for pattern, start, fut in self._heard_waiters:
                if fut.done():
                    continue
                if self.heard.find(pattern, start) >= 0:
                    fut.set_result(None)
                else:
                    still.append((pattern, max(start, len(self.heard) - len(pattern)), fut))
            self._heard_waiters = still

    def produce(self) -> bytes:
        out = self._out
        frame = out.popleft() if out else SILENCE
        if len(frame) != FRAME_BYTES:
            frame = frame.ljust(FRAME_BYTES, b"\0")
        if out or self._sent_waiters:
            self._produced = self._queued - len(out)
            waiters = self._sent_waiters
            while waiters and waiters[0][0] <= self._produced:
                _, _, fut = heapq.heappop(waiters)
                if not fut.done():
                    fut.set_result(None)
        return frame

    def on_answered(self) -> None:
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)

    def on_remote_hangup(self, cause: str) -> None:
        self.hangup_cause = cause
        self._finish(cause)

    def on_tick(self, tick: int) -> None:
        self._tick += 1
        if self._local_tone is not None:
            self.heard += self._local_tone.next_frame()
        timers = self._timers
        while timers and timers[0][0] <= self._tick:
            _, _, fut = heapq.heappop(timers)
            if not fut.done():
                fut.set_result(None)
        if not timers and self._ended is not None and self._ended.done():
            self.exchange.unlisten_ticks(self)

    # ------------------------------------------------------------------ internals
    def _new_call(self) -> tuple[asyncio.Future[None], asyncio.Future[str]]:
        """Forget how the last call ended (a phone is used for call after call); the new
        call's answered and ended futures."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        ended: asyncio.Future[str] = loop.create_future()
        self._answered, self._ended = answered, ended
        self.hangup_cause = None
        self._out.clear()  # nothing of the last call is sent into this one
        self._produced = self._queued
        self._local_tone = None
        self.exchange.listen_ticks(self)
        return answered, ended

    def _wait_ticks(self, ticks: int) -> asyncio.Future[None]:
        self.exchange.listen_ticks(self)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._tick + max(1, ticks), next(self._seq), fut))
        return fut

    def _race(self, fut: asyncio.Future[None], timeout: float) -> asyncio.Future[None]:
        """A future done when ``fut`` is, or when ``timeout`` seconds of ticks have passed."""
        timer = self._wait_ticks(round(timeout * TICKS_PER_SECOND))
        either: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(_: object) -> None:
            if not either.done():
                either.set_result(None)

        fut.add_done_callback(done)
        timer.add_done_callback(done)
        return either

    async def _guard(self, fut: asyncio.Future[None], allow_end: bool = False) -> None:
        """Wait for ``fut``; if the call ends first, stop waiting (raise unless allowed)."""
        ended = self._ended
        if ended is None:
            raise LineError(f"{self.name}: not in a call")
        waits: set[asyncio.Future[Any]] = {fut, ended}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not fut.done() or fut.cancelled():
            fut.cancel()
            if not allow_end:
                raise LineError(f"{self.name}: the call ended ({ended.result()})")

    def _finish(self, cause: str) -> None:
        self._out.clear()
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(cause)
        for _, _, fut in self._sent_waiters:
            if not fut.done():
                fut.cancel()
        self._sent_waiters.clear()
        # Keep ticking timers so listen()/wait() after a hang-up still return.
