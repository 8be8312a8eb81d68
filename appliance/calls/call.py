"""One call: its explicit states, and the awaitable actions a call flow uses.

A flow is an ``async def flow(call)``: it answers, plays prompts, collects keys, records,
hangs up. Every action is a future that the engine's tick resolves (a prompt ran out, a key
arrived, a timeout passed), so the flow never touches audio or time itself. When the call
ends for any reason, every pending and later action raises :class:`CallEnded`, which the
engine treats as the normal way for a flow to stop.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from appliance.media.collector import Collected, CollectEnd, DigitCollector, seconds_to_ticks
from appliance.media.frame import FRAME_MS
from appliance.media.prompts import Prompt, PromptPlayer
from appliance.media.tones import ToneSource, beep
from drivers.base import CAUSE_REMOTE, Direction, Line

if TYPE_CHECKING:
    from appliance.calls.bridge import Bridge
    from appliance.calls.engine import Engine
    from appliance.media.dtmf import DigitMerger
    from appliance.media.progress import CallProgress
    from appliance.media.recorder import Recorder
    from appliance.media.vad import VoiceActivity


class CallState(enum.Enum):
    RINGING = "ringing"  # inbound, offered to the engine, not yet answered
    DIALING = "dialing"  # outbound, waiting for the far end
    ACTIVE = "active"  # answered, audio both ways
    ENDED = "ended"  # cleaned up: recording closed, CDR final


class CallEnded(Exception):
    """The call is over; raised into the flow's pending and later actions."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"call ended ({cause})")
        self.cause = cause


class Source(Protocol):
    """What a call is hearing: one frame a tick, None once it is over. ``last`` turns True
    with the final frame, so the flow waiting for the source goes on in the tick that frame
    goes out and its next source starts in the next tick, with no silent frame between."""

    @property
    def last(self) -> bool: ...

    def next_frame(self) -> bytes | None: ...


class FrameProcessor(Protocol):
    """Raw media on a call (a fax modem): fed every inbound frame, asked for every outbound
    one; ``tx`` returns None when it has finished."""

    def rx(self, frame: bytes) -> None: ...

    def tx(self) -> bytes | None: ...


class RecordEnd(enum.Enum):
    KEY = "key"
    SILENCE = "silence"
    MAX_LENGTH = "max-length"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    path: Path | None  # None when the call ended before the recorder could close
    seconds: float
    speech_seconds: float
    end: RecordEnd


FlowFn = Callable[["Call"], Awaitable[None]]

#: how long after a complete entry a stray terminator key is still taken as part of it
SWALLOW_TICKS = 100  # 2 s

#: what call records show for a key that was part of a secret (PIN, ID digits)
MASKED_KEY = "x"


class _MessageTake:
    """Bookkeeping for one ``record_message`` in progress."""

    __slots__ = ("future", "heard_speech", "max_frames", "recorder", "silence_frames", "silent_run",
                 "speech_frames", "stop_keys")

    def __init__(self, recorder: Recorder, stop_keys: str, max_frames: int, silence_frames: int,
                 future: asyncio.Future[RecordEnd]) -> None:
        self.recorder = recorder
        self.stop_keys = stop_keys
        self.max_frames = max_frames
        self.silence_frames = silence_frames
        self.future = future
        self.heard_speech = False
        self.silent_run = 0
        self.speech_frames = 0


class Call:
    """A call leg owned by the engine. Flows use the ``async`` methods; the engine the rest."""

    def __init__(self, engine: Engine, line: Line, call_id: str, started_at: float) -> None:
        self.engine = engine
        self.line = line
        self.id = call_id
        self.direction = line.direction
        self.caller = line.caller
        self.callee = line.callee
        self.language = engine.prompts.default_language
        self.state = CallState.RINGING if line.direction is Direction.INBOUND else CallState.DIALING
        self.started_at = started_at
        # The engine's monotonic time at the start: the answer and the end are dated from
        # it, so a step of the wall clock mid-call (NTP setting a box that booted with the
        # wrong time) cannot give a call a negative or hour-long duration.
        self.started_mono = engine.clock.now()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.end_cause = ""
        self.keys = ""  # every key pressed on this call, in order ("x" for a secret one)
        self.mask_keys = False  # a secret is being keyed: records get "x", not the key
        self.frames_late = 0  # ticks whose inbound frame had not arrived
        self.samples_in = 0  # stream position of the inbound side, for DigitMerger
        # Set by the engine when the call is attached.
        self.dtmf_slot = -1
        self.merger: DigitMerger | None = None
        self.vad: VoiceActivity | None = None
        self.progress: CallProgress | None = None  # outbound, until the answer is known
        self.progress_outcome = ""
        #: an outbound call's audio since the last ring, until the analysis heard the answer
        self.heard_dialling: deque[bytes] | None = None
        self.recorder: Recorder | None = None
        self.task: asyncio.Task[None] | None = None
        # Flow-facing state.
        self.bridge: Bridge | None = None  # heard and hearing other calls (when no source plays)
        self.source: Source | None = None
        self._source_done: asyncio.Future[str | None] | None = None
        self._typeahead: list[str] = []
        self._typeahead_recorded = 0  # of those, recorded already (the buffer overflowed)
        self._swallow = ""  # terminator keys to drop if they come next (see _after_full_entry)
        self._swallow_until = 0
        self._collector: DigitCollector | None = None
        self._collect_done: asyncio.Future[Collected] | None = None
        self.message: _MessageTake | None = None  # the message being recorded, if any
        self._answer_waiters: list[asyncio.Future[None]] = []  # wait_answered()'s
        self._sleeping: asyncio.Future[None] | None = None  # the flow's sleep() timer
        #: timers set for this call (Engine.wait_ticks), woken when it ends
        self.timers: set[asyncio.Future[None]] = set()
        self._ended: asyncio.Future[str] = engine.loop.create_future()
        #: the clean-up once the call has ended (recording closed, CDR row final)
        self.finalised: asyncio.Task[None] | None = None
        self.in_speech = False
        self.inbound_frame = b""  # this tick's inbound frame (silence when it was late)
        self.catch_up: list[bytes] = []  # further inbound frames processed this tick
        self.late_tick = -1  # the last tick whose inbound frame had not come (a bridge covers it)
        # Lines on the far end's clock (AudioSocket) have their frame taken, and a key's
        # answer sent, by the engine's early pass when the frame came before it.
        self.far_end_clocked = False
        self.early_tick = -1  # the tick whose frame the early pass took
        self.out_tick = -1  # the tick whose outbound frame was written last
        self._source_interruptible = False

    def __repr__(self) -> str:
        return (f"<Call {self.id} {self.direction.value} {self.state.value} "
                f"{self.caller}->{self.callee}>")

    # ------------------------------------------------------------------ flow actions
    async def answer(self) -> None:
        self._check()
        if self.state is CallState.RINGING:
            if self.line.ended:
                # The caller hung up while the flow looked something up off the tick; the
                # hang-up waits for the next tick. It rang out: not an answered call.
                raise CallEnded(self.line.end_cause or CAUSE_REMOTE)
            self.engine.answer_call(self)

    async def wait_answered(self) -> None:
        """For an outbound call: returns once the far end answered (raises CallEnded if not)."""
        self._check()
        if self.state is CallState.ACTIVE:
            return
        # A future per waiter: one that gives up (a timeout, the ACD's ring timer) must not
        # cancel the answer every other waiter, the call's own flow too, is waiting for.
        fut: asyncio.Future[None] = self.engine.loop.create_future()
        self._answer_waiters.append(fut)
        try:
            await fut
        finally:
            self._answer_waiters.remove(fut)

    async def play(self, *prompts: Prompt | str, interruptible: bool = True) -> str | None:
        """Play prompts in turn; a key stops them when ``interruptible``.

        Returns the key that interrupted (it stays buffered for the next ``collect``), or None
        if the prompts played to the end. A key typed before the call reaches a prompt
        (type-ahead) interrupts it at once.
        """
        self._check()
        if interruptible and self._typeahead:
            # Answered a tick from now, like every action: returned at once, a menu loop
            # that replays its prompt over a key it leaves buffered would spin forever
            # and no call would get another frame.
            await self.sleep(0)
            if self._typeahead:
                return self._typeahead[0]
        playlist = [self.engine.prompts.get(p, self.language) if isinstance(p, str) else p
                    for p in prompts]
        # The event log of what the caller was played, beside the audio itself.
        self.engine.emit("prompts", self, names=[p.name for p in playlist],
                         language=self.language)
        return await self._play_source(PromptPlayer(playlist, interruptible), interruptible)

    def stop_playing(self) -> None:
        """Stop what the call is hearing now (its ``play`` returns None): the ACD cuts the
        music on hold the moment a seat answers, from outside the waiting caller's flow."""
        self._stop_source(None)

    def flush_keys(self) -> str:
        """Take the keys typed ahead (e.g. the one that interrupted a prompt) out of the buffer."""
        keys = "".join(self._typeahead)
        self.release_typeahead()
        return keys

    def release_typeahead(self, count: int | None = None) -> None:
        """Record and drop the first ``count`` keys typed ahead (all by default).

        A key typed ahead is recorded (CDR keys, key event) only once it is used, masked
        if a secret entry takes it: a caller who keys a PIN during the prompt before it
        must not find it in the call's records."""
        taken = self._typeahead[:count] if count is not None else self._typeahead
        for digit in taken[self._typeahead_recorded:]:
            self.engine.record_key(self, digit, self.mask_keys)
        self._typeahead_recorded = max(0, self._typeahead_recorded - len(taken))
        del self._typeahead[:len(taken)]

    async def play_tone(self, name: str, seconds: float) -> None:
        """A China call-progress tone (``busy``, ``ringback``, ...) for ``seconds``."""
        self._check()
        await self._play_source(_Limited(ToneSource(name), seconds_to_ticks(seconds)), False)

    async def beep(self) -> None:
        self._check()
        self.engine.emit("prompts", self, names=["beep"], language=self.language)
        await self._play_source(PromptPlayer([Prompt.from_samples("beep", beep())], False), False)

    async def silence(self, seconds: float) -> None:
        """Say nothing for a while (keys are buffered)."""
        self._check()
        await self._play_source(_Limited(None, seconds_to_ticks(seconds)), False)

    async def collect(
        self,
        max_digits: int = 1,
        *,
        terminator: str = "#",
        first_timeout: float = 5.0,
        inter_timeout: float = 3.0,
        prompt: Sequence[Prompt | str] = (),
        secret: bool = False,
    ) -> Collected:
        """Collect keys (after playing ``prompt``, which a key interrupts).

        With ``secret`` (a PIN, the last digits of an ID number) the keys still reach this
        collection, but every record of the call (CDR keys, key events) gets ``x`` instead.
        """
        self.mask_keys = secret
        try:
            return await self._collect(max_digits, terminator, first_timeout, inter_timeout,
                                        prompt)
        finally:
            self.mask_keys = False

    async def _collect(self, max_digits: int, terminator: str, first_timeout: float,
                       inter_timeout: float, prompt: Sequence[Prompt | str]) -> Collected:
        if prompt:
            await self.play(*prompt)
        self._check()
        start = self.next_free_tick()
        collector = DigitCollector(start, max_digits, terminator, first_timeout, inter_timeout)
        for i, digit in enumerate(self._typeahead):
            # Keys typed ahead count as keyed when the entry starts: its inter-digit
            # timeout runs from the same frame as the first-digit one.
            if collector.key(digit, start) is not None:
                # Keys typed after the entry was complete stay buffered for the next one.
                assert collector.result is not None
                taken = i + 1
                if (collector.result.end is CollectEnd.MAX_DIGITS
                        and not self._after_full_entry(self._typeahead[taken:], terminator)):
                    taken += 1  # the terminator keyed after a full entry goes with it
                self.release_typeahead(taken)
                return collector.result
        self.release_typeahead()
        self._collector = collector
        self._collect_done = self.engine.loop.create_future()
        self.engine.collecting.add(self)
        try:
            return await self._collect_done
        finally:
            self._collector = None
            self._collect_done = None
            self.engine.collecting.discard(self)

    def _after_full_entry(self, rest: list[str], terminator: str) -> bool:
        """An entry ended on its last digit: a terminator keyed right after it belongs to
        that entry, not to the next one (callers often add '#' out of habit). False when
        the first of ``rest`` is that terminator; with nothing typed yet, the next key is
        swallowed if it is."""
        if rest:
            return not (terminator and rest[0] in terminator)
        self._swallow = terminator
        self._swallow_until = self.engine.tick_no + SWALLOW_TICKS
        return True

    async def record_message(
        self,
        path: Path,
        *,
        max_seconds: float = 180.0,
        silence_seconds: float = 3.0,
        stop_keys: str = "#",
        index: bool = True,
    ) -> RecordedMessage:
        """Record what the caller says into ``path`` (crash-safe), until a stop key, the end
        of their speech (VAD + energy gate), the maximum length or hang-up. ``index=False``
        keeps the file out of the recordings index (a scratch take the caller will replace
        or discard, such as a prompt recorded by phone)."""
        from appliance.media.recorder import Recorder

        self._check()
        self.release_typeahead()
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder = Recorder(path, channels=1)
        fut: asyncio.Future[RecordEnd] = self.engine.loop.create_future()
        take = _MessageTake(recorder, stop_keys, seconds_to_ticks(max_seconds),
                            seconds_to_ticks(silence_seconds), fut)
        self.message = take
        try:
            end = await fut
        except CallEnded:
            end = RecordEnd.HANGUP
        except asyncio.CancelledError:
            # The flow gave up on the message (a timeout, a sibling task failing): what was
            # said is kept and indexed as on a hang-up, and the cancellation goes on.
            self.engine.close_later(recorder, self.id, index=index)
            raise
        finally:
            self.message = None
        frames = recorder.frames_written
        final = await self.engine.close_recorder(recorder, self.id, index=index)
        return RecordedMessage(final, frames * FRAME_MS / 1000,
                               take.speech_frames * FRAME_MS / 1000, end)

    async def exchange(self, processor: FrameProcessor) -> None:
        """Hand the call's audio to ``processor`` each tick, both ways, until its ``tx``
        returns None (raises CallEnded if the call ends first)."""
        self._check()
        await self._play_source(_Exchange(self, processor), False)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (raises CallEnded if the call ends meanwhile, as every other
        action does)."""
        self._check()
        # Awaited directly (the end of the call fails it: fail_pending), so the flow wakes
        # in the tick the timer fires and its next prompt starts in that same tick.
        timer = self._sleeping = self.engine.wait_ticks(
            self, seconds_to_ticks(seconds), start=self.next_free_tick())
        try:
            await timer
        finally:
            self._sleeping = None

    async def hangup(self, cause: str = "normal") -> None:
        """End the call from the engine's side; the clean-up runs before this returns
        (also when the caller hung up first and it is still under way)."""
        await self.engine.end_call(self, cause)

    async def wait_ended(self) -> str:
        return await asyncio.shield(self._ended)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    # ------------------------------------------------------------------ engine side
    def _check(self) -> None:
        if self.state is CallState.ENDED:
            raise CallEnded(self.end_cause)

    async def _play_source(self, source: Source, interruptible: bool) -> str | None:
        self._stop_source(None)
        fut: asyncio.Future[str | None] = self.engine.loop.create_future()
        self.source = source
        self._source_done = fut
        self._source_interruptible = interruptible
        try:
            return await fut
        except asyncio.CancelledError:
            if self._source_done is fut:
                self._stop_source(None)  # a cancelled play stops sounding
            raise

    def _stop_source(self, result: str | None) -> None:
        fut = self._source_done
        self.source = None
        self._source_done = None
        if fut is not None and not fut.done():
            fut.set_result(result)

    def next_output(self) -> bytes | None:
        """This tick's outbound frame, or None for silence (called by the engine)."""
        source = self.source
        if source is None:
            return None
        frame = source.next_frame()
        if frame is None or source.last:
            self._stop_source(None)
        return frame

    def next_free_tick(self) -> int:
        """The tick of this call's next outbound frame not yet written: this tick's for a
        flow that runs before the engine writes the line, the next one's after it. Timers
        count from it, so ``sleep(0.2)`` between two prompts is ten frames of silence."""
        tick = self.engine.tick_no
        return tick + 1 if self.out_tick >= tick else tick

    def answers_alone(self) -> bool:
        """Whether this tick's outbound frame can be made before the tick has taken every
        line's inbound frame: not for a bridge (it mixes the others' frames of this tick)
        or a frame processor (fed every inbound frame of the tick first)."""
        source = self.source
        return source is not None and not isinstance(source, _Exchange)

    def on_key(self, digit: str) -> bool:
        """A key pressed (merged in-band/out-of-band), dispatched by the engine. False when
        it is typed ahead: it is recorded once used (:meth:`release_typeahead`)."""
        take = self.message
        if take is not None and not take.future.done():
            if digit in take.stop_keys:
                take.future.set_result(RecordEnd.KEY)
            return True
        # Past here a key is the flow's next: the recording or collection it would have
        # gone to may have ended earlier in this same tick (two keys in one tick's frames),
        # and then it is typed ahead, not lost.
        if self._swallow:
            swallow, self._swallow = self._swallow, ""
            if digit in swallow and self.engine.tick_no <= self._swallow_until:
                return True  # the '#' a caller adds out of habit after a complete entry
        collector = self._collector
        if collector is not None and collector.result is None:
            result = collector.key(digit, self.engine.tick_no)
            if result is not None and self._collect_done and not self._collect_done.done():
                self._collect_done.set_result(result)
                if result.end is CollectEnd.MAX_DIGITS:
                    self._after_full_entry([], collector.terminator)
            return True
        typed = len(self._typeahead) < 32
        if typed:
            self._typeahead.append(digit)
        else:
            # The buffer is full and this key is dropped from it, but recorded now: the
            # keys before it go first, so the call's keys keep the order they were pressed.
            for earlier in self._typeahead[self._typeahead_recorded:]:
                self.engine.record_key(self, earlier, self.mask_keys)
            self._typeahead_recorded = len(self._typeahead)
        if self._source_done is not None and self._source_interruptible:
            self._stop_source(digit)
        return not typed

    def on_tick(self, tick: int) -> bool:
        """Timeouts of an active collector (only calls that collect are ticked); True when
        this tick ended the collection, i.e. the flow has something to do."""
        collector = self._collector
        if collector is not None:
            result = collector.tick(tick)
            if result is not None and self._collect_done and not self._collect_done.done():
                self._collect_done.set_result(result)
                return True
        return False

    def on_inbound(self, frame: bytes, speech: bool) -> None:
        """Feed a message being recorded (called only while one is)."""
        take = self.message
        if take is None or take.future.done():
            return
        take.recorder.write(frame)
        if speech:
            take.heard_speech = True
            take.speech_frames += 1
            take.silent_run = 0
        else:
            take.silent_run += 1
        if take.recorder.frames_written >= take.max_frames:
            take.future.set_result(RecordEnd.MAX_LENGTH)
        elif take.silent_run >= take.silence_frames and (
            take.heard_speech or take.silent_run >= 3 * take.silence_frames
        ):
            # After speech: the caller finished. Before any speech: give them longer to start.
            take.future.set_result(RecordEnd.SILENCE)

    def mark_answered(self) -> None:
        for fut in self._answer_waiters:
            if not fut.done():
                fut.set_result(None)

    def fail_pending(self, cause: str) -> None:
        """Wake every pending action with CallEnded (the call is over)."""
        exc = CallEnded(cause)
        for fut in (self._source_done, self._collect_done, self._sleeping,
                    *self._answer_waiters):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        for timer in list(self.timers):
            # Woken, not failed: whoever waits on a call's timer looks at the call next
            # (and an ACD deadline nobody awaits any more must not log an exception).
            if not timer.done():
                timer.set_result(None)
        if self.message is not None and not self.message.future.done():
            self.message.future.set_result(RecordEnd.HANGUP)
        if not self._ended.done():
            self._ended.set_result(cause)
        self.source = None


class _Limited:
    """A source that lasts ``frames`` ticks: a tone, or silence when ``inner`` is None."""

    __slots__ = ("_inner", "_left", "last")

    def __init__(self, inner: ToneSource | None, frames: int) -> None:
        self._inner = inner
        self._left = frames
        self.last = frames <= 0

    def next_frame(self) -> bytes | None:
        left = self._left
        if left <= 0:
            return None
        self._left = left = left - 1
        self.last = not left
        return self._inner.next_frame() if self._inner is not None else _SILENT


_SILENT = bytes(320)


class _Exchange:
    """The source behind :meth:`Call.exchange`. The engine asks a source for its frame
    after it has taken this tick's inbound frames, so they are here to hand over first."""

    __slots__ = ("_call", "_processor")

    last = False  # a processor says it has finished only by returning None

    def __init__(self, call: Call, processor: FrameProcessor) -> None:
        self._call = call
        self._processor = processor

    def next_frame(self) -> bytes | None:
        call, processor = self._call, self._processor
        if call.late_tick != call.engine.tick_no:
            # A frame that missed its tick is handed over when it comes, with the next,
            # not covered by silence: a modem's receiver keeps its own time, and 20 ms of
            # silence inside a page is a burst error (at 0.5 % of frames, no fax got through).
            processor.rx(call.inbound_frame)
        for frame in call.catch_up:
            processor.rx(frame)
        return processor.tx()


__all__ = ["Call", "CallEnded", "CallState", "CollectEnd", "Collected", "FlowFn", "FrameProcessor",
           "RecordEnd", "RecordedMessage"]
