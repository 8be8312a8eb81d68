"""The headset seat: a sound card on the box as one agent seat, behind the Line interface.

A small branch has one or two people taking calls at the box itself, wearing a USB
headset. To the engine that headset is a seat like any other: ``engine.originate`` to the
seat's number gives a line that rings; while it rings the agent hears a local ring tone in
the headset and the engine hears ringback (so its call-progress analysis waits, as for a
seat phone on the simulated exchange); the seat console calls :meth:`SoundDriver.answer`
(the headset has no hook switch) and the line reports ANSWERED, after which the
microphone feeds the line and the engine's frames go to the earpiece. One call at a time:
a second call to a busy seat ends at once as busy. If the device goes away mid-call (USB
plug pulled, sound server gone), the line ends with the ``line-dropped`` cause, the engine
runs its usual clean-up, and the driver tries to open the device again every
``reopen_interval`` seconds; while it is away, calls to the seat are refused. Audio moves
in the engine's tick hooks (see headset.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from appliance.media.frame import FRAME_BYTES, SILENCE
from appliance.media.tones import ToneSource
from drivers.base import (
    CAUSE_BUSY,
    CAUSE_LINE_DROPPED,
    CAUSE_NORMAL,
    CAUSE_REMOTE,
    CAUSE_SHUTDOWN,
    AcceptLine,
    Direction,
    Driver,
    EventKind,
    Line,
    LineError,
    LineEvent,
    LineState,
)
from drivers.sound.headset import Clock, DeviceLost, Headset, HeadsetStats

log = logging.getLogger("drivers.sound")

T = TypeVar("T")

#: how long stop() waits for the device to close (a stalled sound server can hold it)
CLOSE_TIMEOUT_S = 2.0
#: microphone frames held back as a reserve for a tick whose block the card had not
#: delivered yet: the card's clock and the tick's drift in and out of phase, and without
#: it about one tick in ten finds no frame (recorded as a gap); it costs 20 ms of delay
MIC_RESERVE_FRAMES = 1
#: the tone the agent hears while the seat rings (China ringback cadence, 1 s in 5)
RING_TONE = "ringback"
#: quieter than a line tone: it is played straight into someone's ear
RING_LEVEL_DBM0 = -16.0


@dataclass(frozen=True, slots=True)
class HeadsetConfig:
    """Which device is the headset (see :class:`Headset` for the meaning of each field)."""

    device: int | str | None = None
    input_device: int | str | None = None
    output_device: int | str | None = None
    rate: int | None = None


class SoundLine(Line):
    """The one call leg on the headset seat."""

    driver_name = "sound"

    def __init__(self, driver: SoundDriver, line_id: str, number: str, caller: str) -> None:
        super().__init__(line_id, Direction.OUTBOUND, caller, number)
        self._driver = driver
        #: why the line was dropped, in words (the device and PortAudio's error)
        self.reason = ""
        self._out = SILENCE  # the engine's frame for this tick
        self._mic: deque[bytes] = deque()  # microphone frames not yet handed to the engine

    def write_frame(self, frame: bytes) -> None:
        if self.state is LineState.ENDED:
            return
        if len(frame) != FRAME_BYTES:
            raise LineError(
                f"line {self.id}: a frame is {FRAME_BYTES} bytes of slin, got {len(frame)}"
            )
        # Held for the driver's after_tick, which writes exactly one block to the card
        # per tick whether or not a call is up.
        self._out = frame

    def answer(self) -> None:
        # The engine answers inbound lines; this seat only places outbound ones, whose
        # answer is the agent's (SoundDriver.answer).
        raise LineError(f"line {self.id}: the headset seat is answered by the agent")

    def hangup(self, cause: str = CAUSE_NORMAL) -> None:
        if self.state is LineState.ENDED:
            return
        self.state = LineState.ENDED
        self.end_cause = cause
        self._driver._release(self)

    def _take_output(self) -> bytes:
        out, self._out = self._out, SILENCE
        return out

    def _from_microphone(self, frames: list[bytes]) -> None:
        """Hand the engine one frame a tick from what the card delivered, keeping
        MIC_RESERVE_FRAMES back; more only when more are waiting (the engine catches up)."""
        mic = self._mic
        mic.extend(frames)
        for _ in range(max(1, len(mic) - MIC_RESERVE_FRAMES) if mic else 0):
            self.push_frame(mic.popleft())


class SoundDriver(Driver):
    """A headset as one seat, reachable at ``seat`` (e.g. ``"8001"``)."""

    name = "sound"

    def __init__(
        self,
        seat: str,
        config: HeadsetConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        reopen_interval: float = 2.0,
    ) -> None:
        self.seat = seat
        self.config = config or HeadsetConfig()
        self.clock = clock
        self.reopen_interval = reopen_interval
        self.stats = HeadsetStats()
        self.line: SoundLine | None = None
        #: why the device is unavailable ("" while it works)
        self.lost_reason = ""
        self._headset: Headset | None = None
        self._ring = ToneSource(RING_TONE, RING_LEVEL_DBM0)  # into the earpiece
        self._ringback = ToneSource(RING_TONE)  # what the engine hears meanwhile
        self._reopen_task: asyncio.Task[None] | None = None
        self._calls = 0
        self._running = False

    # ------------------------------------------------------------------ Driver
    async def start(self, accept: AcceptLine) -> None:
        """Open the device; a wrong name or a device without the channels raises here."""
        # The seat never offers inbound lines: its calls are placed by the engine.
        del accept
        self._headset = await _in_thread(self._open, "sound-open", discard=Headset.close)
        self._running = True

    async def stop(self) -> None:
        self._running = False
        task, self._reopen_task = self._reopen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        line = self.line
        if line is not None:
            line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_SHUTDOWN))
            self.line = None
        headset, self._headset = self._headset, None
        if headset is not None:
            try:
                await asyncio.wait_for(_in_thread(headset.close, "sound-close"),
                                       CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.warning("sound: %s did not close in %.0f s (sound server stalled?)",
                            headset.describe_devices(), CLOSE_TIMEOUT_S)

    async def originate(self, number: str, caller: str = "") -> Line:
        if number != self.seat:
            raise LineError(f"sound: no seat {number!r} here; the headset is seat {self.seat!r}")
        if not self._running:
            raise LineError(f"sound: seat {self.seat} is not started")
        if self._headset is None:
            raise LineError(
                f"sound: seat {self.seat} cannot ring: {self.lost_reason or 'no device'}"
            )
        self._calls += 1
        line = SoundLine(self, f"sound-{self.seat}-{self._calls}", number, caller)
        if self.line is not None:
            # One headset, one call: the caller gets what a busy seat phone gives.
            line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_BUSY))
            return line
        self.line = line
        self._ring.reset()
        self._ringback.reset()
        log.info("sound: seat %s rings (%s)", self.seat, line.id)
        return line

    # ------------------------------------------------------------------ the agent
    @property
    def available(self) -> bool:
        """The device is open (False while it is away)."""
        return self._headset is not None

    def answer(self) -> None:
        """The agent takes the ringing call (the seat console's answer button)."""
        line = self.line
        if line is None or line.state is not LineState.DIALING:
            raise LineError(f"sound: seat {self.seat} has no ringing call to answer")
        line.push_event(LineEvent(EventKind.ANSWERED))
        log.info("sound: seat %s answered %s", self.seat, line.id)

    def hang_up(self) -> None:
        """The agent ends the call (the seat console's hang-up button)."""
        line = self.line
        if line is None:
            raise LineError(f"sound: seat {self.seat} has no call to hang up")
        self.line = None
        line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_REMOTE))

    async def reopen(self) -> bool:
        """Try once to open the device again; True when it is back (or never went away)."""
        if self._headset is not None:
            return True
        try:
            headset = await _in_thread(self._open, "sound-reopen", discard=Headset.close)
        except (LineError, OSError) as exc:  # OSError: PortAudio itself would not start
            log.debug("sound: seat %s still without its device: %s", self.seat, exc)
            return False
        if not self._running:
            _in_thread(headset.close, "sound-close")
            return False
        self._headset = headset
        self.lost_reason = ""
        self.stats.reopens += 1
        log.warning("sound: seat %s has its device back", self.seat)
        return True

    # ------------------------------------------------------------------ the tick
    def before_tick(self, tick: int) -> None:
        headset = self._headset
        if headset is None:
            return
        try:
            frames = headset.read_frames()
        except DeviceLost as exc:
            self._device_lost(exc)
            return
        line = self.line
        if line is None:
            return  # nobody on the seat: the microphone is read only to keep it drained
        if line.state is LineState.DIALING:
            # The agent's microphone stays private until they answer; the engine hears
            # ringback, which its call-progress analysis waits on until the ring timeout.
            line.push_frame(self._ringback.next_frame())
        elif line.state is LineState.ANSWERED:
            line._from_microphone(frames)

    def after_tick(self, tick: int) -> None:
        headset = self._headset
        if headset is None:
            return
        line = self.line
        if line is None:
            out = SILENCE
        elif line.state is LineState.DIALING:
            line._take_output()
            out = self._ring.next_frame()
        else:
            out = line._take_output()
        try:
            headset.write_frame(out)
        except DeviceLost as exc:
            self._device_lost(exc)

    # ------------------------------------------------------------------ internals
    def _open(self) -> Headset:
        c = self.config
        return Headset(device=c.device, input_device=c.input_device,
                       output_device=c.output_device, rate=c.rate, clock=self.clock,
                       stats=self.stats)

    def _release(self, line: SoundLine) -> None:
        if self.line is line:
            self.line = None

    def _device_lost(self, exc: DeviceLost) -> None:
        headset, self._headset = self._headset, None
        if headset is not None:
            # Off the loop: closing waits for a stalled sound server, maybe for ever.
            _in_thread(headset.close, "sound-close")
        self.lost_reason = str(exc)
        self.stats.losses += 1
        log.error("%s; reopening every %.0f s", exc, self.reopen_interval)
        line, self.line = self.line, None
        if line is not None and not line.ended:
            line.reason = str(exc)
            line.push_event(LineEvent(EventKind.HANGUP, cause=CAUSE_LINE_DROPPED))
        if self._running and self._reopen_task is None:
            self._reopen_task = asyncio.get_running_loop().create_task(
                self._keep_reopening(), name=f"sound-reopen-{self.seat}"
            )

    async def _keep_reopening(self) -> None:
        try:
            while self._running and not await self.reopen():
                await asyncio.sleep(self.reopen_interval)
        finally:
            self._reopen_task = None


def _in_thread(
    fn: Callable[[], T], name: str, *, discard: Callable[[T], object] | None = None
) -> asyncio.Future[T]:
    """Run a blocking PortAudio call on a daemon thread; the future gets its outcome.

    Not the loop's executor: a call that hangs on a stalled sound server would keep an
    executor thread, and with it the process, from ever exiting. ``discard`` receives a
    result nobody waits for any more (the caller was cancelled), e.g. to close a device.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():
            if ok and discard is not None:
                _in_thread_orphan(discard, value)
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            future.set_exception(value)

    def run() -> None:
        try:
            outcome: tuple[bool, object] = (True, fn())
        except BaseException as exc:
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(deliver, *outcome)
        except RuntimeError:  # the loop is closed: nobody will ever take the result
            if outcome[0] and discard is not None:
                discard(outcome[1])  # type: ignore[arg-type]

    # Nobody may await a close; its failure is logged rather than lost.
    future.add_done_callback(_log_failure)
    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _in_thread_orphan(discard: Callable[[T], object], value: object) -> None:
    threading.Thread(target=discard, args=(value,), name="sound-discard", daemon=True).start()


def _log_failure(future: asyncio.Future[T]) -> None:
    if not future.cancelled() and future.exception() is not None:
        exc = future.exception()
        if not isinstance(exc, LineError):  # open failures are reported by their caller
            log.error("sound: device call failed: %r", exc)
