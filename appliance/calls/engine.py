"""The engine: one 20 ms tick for every call, batched DSP, and one clean-up path.

Each tick (paced against ``start + n × 20 ms`` on the injected clock) does, in this order:
1. takes one inbound frame from every line and runs DTMF detection on all of them as a
   batch (the 450 Hz notch in numpy, spandsp's detector in C), dispatching keys and line
   events to the calls;
2. lets the call flows that those events woke run, and writes the lines that keyed at
   once, so a key pressed in this frame changes what the caller hears in this same tick
   and the answer does not wait behind the rest of the tick's work;
3. runs the rest of the inbound DSP (webrtcvad, call-progress analysis, messages being
   recorded), writes one outbound frame to every other line (a prompt, a tone or
   silence, never nothing, since Asterisk hangs up after 2 s of quiet), and only then
   appends both directions to each call's crash-safe stereo recording.
Lines whose frames come on the far end's clock (AudioSocket from Asterisk) pull the tick to
just after their arrival (:meth:`Engine._align_phase`), so no frame waits most of a tick,
and get an early pass when about half of their frames are in (:meth:`Engine._early`): keys
in those frames are answered then, rather than after the last frame and the whole batch.
Every way a call can end (the far end hangs up, the line drops, the flow hangs up, the
engine stops) goes through :meth:`Engine.end_call`: the recording is closed and indexed,
the CDR row made final and the detector slots freed.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import time
import uuid
import wave
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.calls.bridge import Bridge
from appliance.calls.call import MASKED_KEY, Call, CallEnded, CallState, FlowFn
from appliance.calls.clock import Clock
from appliance.media.collector import seconds_to_ticks
from appliance.media.dtmf import DigitMerger, DtmfBank
from appliance.media.frame import FRAME_MS, SAMPLES_PER_FRAME, SILENCE
from appliance.media.progress import CallProgress, Outcome
from appliance.media.prompts import PromptLibrary
from appliance.media.recorder import Recorder, recover, wav_frames
from appliance.media.vad import SpeechEvent, VoiceActivity, frame_levels_dbfs
from appliance.store import cdr
from appliance.store.db import Store
from drivers.base import (
    CAUSE_BUSY,
    CAUSE_CONGESTION,
    CAUSE_LINE_DROPPED,
    CAUSE_NO_ANSWER,
    CAUSE_NORMAL,
    CAUSE_SHUTDOWN,
    Direction,
    Driver,
    EventKind,
    Line,
    LineError,
    LineState,
)

log = logging.getLogger("appliance.calls")

TICK = FRAME_MS / 1000
DAY = 86_400.0  # seconds
#: Tick phase alignment for far-end clocked lines (see Engine._align_phase): judged once a
#: second on up to PHASE_SAMPLES arrival times, placed in PHASE_BIN steps around the tick.
#: Arrivals from PHASE_MARGIN before a tick position to PHASE_AFTER after it may cross it
#: (wake-up delay, jitter): the tick goes where no more than PHASE_LATE_SHARE more of them
#: do so than at the best place, and of those places where frames wait least; it moves at
#: most PHASE_STEP a judgement, to the nearest position equivalent on the 20 ms grid.
PHASE_WINDOW_TICKS = 50
PHASE_MARGIN = 0.0005
PHASE_AFTER = 0.001
PHASE_BIN = 0.0001
PHASE_STEP = 0.001
PHASE_SAMPLES = 4000
PHASE_MIN_ARRIVALS = 50
PHASE_LATE_SHARE = 0.005
#: places whose mean wait is within this of the least are as good: the nearest is taken
PHASE_WAIT_SLACK = 0.0001
#: The early pass (see Engine._early) runs when about half of those arrivals are in, if
#: that is at least EARLY_MIN_LEAD and at most EARLY_MAX_LEAD before the tick.
EARLY_SHARE = 0.5
EARLY_MIN_LEAD = 0.001
EARLY_MAX_LEAD = 0.012
#: fall this far behind and the engine skips ahead instead of sending a burst of frames
MAX_BEHIND_TICKS = 5
#: the keys heard go to the call records every this many ticks (100 ms), in one store
#: transaction, and before any call's final row; a commit every tick cost the engine's core
#: more than the records gain from being current to the tick
KEY_WRITE_TICKS = 5
#: the engine records that it runs every ALIVE_EVERY_S (a crash's calls end then)
ALIVE_TICKS = round(cdr.ALIVE_EVERY_S / TICK)
#: an outbound call's recording starts where call-progress analysis last heard a tone
#: (ringback), at most this many frames before the answer was certain: it needs some 300
#: ms of the callee's voice, or for a single short word the quiet after it, to be sure
PRE_ROLL_FRAMES = 400
#: how long a flow may take to unwind after its call ended before it is cancelled
FLOW_GRACE_SECONDS = 5.0
CAUSE_FLOW_ERROR = "flow-error"  # the flow, or the audio it was playing, failed


@dataclass
class EngineStats:
    """Figures the benchmark and the status page read."""

    ticks: int = 0
    skipped_ticks: int = 0
    failed_ticks: int = 0
    frames_in: int = 0
    frames_late: int = 0
    calls_started: int = 0
    calls_ended: int = 0
    lateness: list[float] = field(default_factory=list)  # seconds, per tick, when enabled
    tick_work: list[float] = field(default_factory=list)  # seconds of work per tick
    keep_samples: bool = False


class Engine:
    """Owns every call. Drivers hand it lines; a flow function runs each call's logic."""

    def __init__(
        self,
        *,
        clock: Clock,
        drivers: Sequence[Driver],
        flow: FlowFn,
        prompts: PromptLibrary | None = None,
        store: Store | None = None,
        recordings: Path | None = None,
        record_calls: bool = True,
        on_event: Callable[[str, Call, dict[str, Any]], None] | None = None,
        after_recover: Sequence[Callable[[list[Path]], None]] = (),
        align_phase: bool = True,
        freeze_heap: bool = False,
    ) -> None:
        self.clock = clock
        self.align_phase = align_phase  # False keeps the fixed grid (for comparisons)
        # The running appliance sets this: see _freeze_heap.
        self.freeze_heap = freeze_heap
        self.drivers = list(drivers)
        self.flow = flow
        self.prompts = prompts or PromptLibrary()
        self.store = store
        self.recordings = recordings
        self.record_calls = record_calls and recordings is not None
        self.on_event = on_event
        # Features that keep their own index of what they record (voicemail) finish their
        # rows here, after the files a crash left are repaired and before any call starts.
        self.after_recover = list(after_recover)
        self.calls: list[Call] = []
        self.collecting: set[Call] = set()
        self.dialing: set[Call] = set()  # outbound calls whose answer is told from their audio
        self.stats = EngineStats()
        self.tick_no = 0
        self._pending: list[Line] = []
        self._prune = False  # a call ended: drop ended calls from self.calls next tick
        self._caught_up: list[Call] = []  # calls with catch-up frames this tick
        self._keyed: list[Call] = []  # calls with a key this tick: their reply goes out first
        self._sounding: set[Call] = set()  # calls whose in-band key may still be held down
        self._key_rows: list[tuple[str, str]] = []  # (call id, key as shown): CDR, end of tick
        self._alive_due = 0  # the tick that next writes the engine's alive mark
        self._timers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._dtmf = DtmfBank()
        self._stopping = False
        self._cleanups: set[asyncio.Future[Any]] = set()  # finalising and unwinding
        self._loop: asyncio.AbstractEventLoop | None = None
        self.start_time = 0.0  # clock time of tick 0: every tick n is due at start + n × 20 ms
        self.phase = 0.0  # ... plus this (≤ 0): the alignment to far-end clocked frames
        #: how long before each tick the early pass runs (0: none); set with the phase
        self.early_lead = 0.0
        self._early_heard: _Heard | None = None  # what the early pass took for the tick
        self._early_sent: set[Call] = set()  # lines it already wrote for the tick
        self._sent: list[tuple[Call, bytes]] = []  # frames written this tick, to record
        self._far_end_lines: set[Line] = set()  # offered by far-end clocked drivers
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Start the drivers and tick until :meth:`stop`; then end every call cleanly."""
        self._loop = asyncio.get_running_loop()
        try:
            self._recover()
            for driver in self.drivers:
                await driver.start(self._accept_far_end if driver.far_end_clocked
                                   else self.accept)
        except BaseException:
            # Wake whoever waits for the start; they find the run task failed.
            self.started.set()
            await self._shutdown()
            raise
        start = self.start_time = self.clock.now()
        n = 0
        # Arrival times are CLOCK_MONOTONIC: a manual clock has nothing to align them to.
        align = (self.align_phase and self.clock.real_time
                 and any(d.far_end_clocked for d in self.drivers))
        if align:
            for driver in self.drivers:
                if driver.far_end_clocked:
                    driver.track_arrivals()
        if self.freeze_heap:
            _freeze_heap()
        self.started.set()
        try:
            while not self._stopping:
                if align and n % PHASE_WINDOW_TICKS == 0:
                    self._align_phase()
                scheduled = start + n * TICK + self.phase
                if self.early_lead and self.clock.now() < scheduled - EARLY_MIN_LEAD / 2:
                    await self.clock.sleep_until(scheduled - self.early_lead)
                    try:
                        await self._early(n)
                    except Exception:
                        log.exception("early pass of tick %d failed", n)
                        self.stats.failed_ticks += 1
                await self.clock.sleep_until(scheduled)
                now = self.clock.now()
                behind = now - scheduled
                if behind > MAX_BEHIND_TICKS * TICK:
                    # A stall (GC, swap, a stopped process): resynchronise rather than burst.
                    skip = int(behind / TICK)
                    n += skip
                    self.stats.skipped_ticks += skip
                    scheduled = start + n * TICK + self.phase
                    behind = now - scheduled
                self.tick_no = n
                try:
                    await self._tick(n)
                except Exception:
                    # A bug hit by one call must not silence every other call: log it and
                    # keep the clock going.
                    log.exception("tick %d failed", n)
                    self.stats.failed_ticks += 1
                if self.stats.keep_samples:
                    self.stats.lateness.append(behind)
                    self.stats.tick_work.append(self.clock.now() - now)
                self.stats.ticks += 1
                n += 1
        finally:
            await self._shutdown()

    def _align_phase(self) -> None:
        """Move the tick to just after the arrival of far-end clocked frames.

        A frame waits from its arrival to the next tick, and it arrives wherever the far
        end's clock (the line card behind Asterisk) puts it; every key, answer and bridged
        word carries that wait. A frame that arrives just after its tick misses it (it is
        late: silence in the recording, a covered gap in a bridge). So each second the tick
        goes where fewest of the last second's arrivals fall around it (within half a per
        cent of the fewest), and of those places where frames wait least: just after a
        card's frames; with two cards out of step, just after one of them; with a burst of
        late frames (a network hiccup), still just after the rest.

        Positions are taken on the 20 ms grid, so the phase grows without bound while a
        card's clock drifts against ours: the tick follows the card's rate instead of
        walking back across the whole tick at each wrap. It moves a millisecond a
        judgement at most, to the nearest equivalent position; among equally good places
        it stays where it is."""
        arrivals = [t for d in self.drivers if d.far_end_clocked for t in d.take_arrivals()]
        if len(arrivals) < PHASE_MIN_ARRIVALS:
            return
        stride = max(1, len(arrivals) // PHASE_SAMPLES)
        offsets = np.mod(np.asarray(arrivals[::stride]) - self.start_time, TICK)
        bins = np.minimum((offsets / PHASE_BIN).astype(np.intp), _PHASE_BINS - 1)
        share = np.bincount(bins, minlength=_PHASE_BINS) / len(offsets)
        risk = _PHASE_NEAR @ share  # the share that may cross a tick at each bin boundary
        wait = _PHASE_WAITS @ share  # the mean wait of a frame for a tick there
        cost = np.where(risk <= risk.min() + PHASE_LATE_SHARE, wait, np.inf)
        least = cost.min()
        # Where the tick is now is as good when it is within chance of the best (two
        # sigma of a count of this many arrivals): arrivals all over the tick leave it put.
        here = round(float(np.mod(self.phase, TICK)) / PHASE_BIN) % _PHASE_BINS
        waits = np.mod(self.phase - offsets, TICK)
        n = len(offsets)
        if (risk[here] > risk.min() + PHASE_LATE_SHARE + 2 * np.sqrt(risk.min() / n)
                or wait[here] > least + PHASE_WAIT_SLACK + 2 * float(np.std(waits)) / np.sqrt(n)):
            good = np.flatnonzero(cost <= least + PHASE_WAIT_SLACK) * PHASE_BIN
            moves = np.mod(good - self.phase + TICK / 2, TICK) - TICK / 2
            move = float(moves[np.argmin(np.abs(moves))])
            self.phase += float(np.clip(move, -PHASE_STEP, PHASE_STEP))
        # The early pass goes when about half the frames are in, wherever the tick is.
        waits = np.mod(self.phase - offsets, TICK)
        lead = float(np.quantile(waits, EARLY_SHARE)) - PHASE_MARGIN
        self.early_lead = lead if EARLY_MIN_LEAD <= lead <= EARLY_MAX_LEAD else 0.0

    def stop(self) -> None:
        self._stopping = True

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called (or the run is ending): no new calls."""
        return self._stopping

    async def _shutdown(self) -> None:
        self._stopping = True  # from here on, a line offered is hung up (accept)
        # Lines offered since the last tick are calls too: each gets its record.
        self._attach_pending()
        for call in list(self.calls):
            self._end_now(call, CAUSE_SHUTDOWN)
        flows = [c.task for c in self.calls if c.task is not None and not c.task.done()]
        if flows:
            _, stuck = await asyncio.wait(flows, timeout=FLOW_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
        for driver in self.drivers:
            try:
                await driver.stop()
            except Exception:
                log.exception("driver %s failed to stop", driver.name)
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        self.stopped.set()

    def _recover(self) -> None:
        """Finish what a crashed engine left: open CDR rows and unfinished recordings."""
        if self.store is not None:
            closed = cdr.close_unfinished(self.store, self.clock.wall()).result()
            if closed:
                log.warning("closed %d call record(s) left open by a previous engine", closed)
        recovered = self._recover_recordings()
        self._index_finished_recordings(set(recovered))
        for hook in self.after_recover:
            try:
                hook(recovered)
            except Exception:
                # The files are on disk and the hook runs again at the next start: a
                # failure here must not keep the box from taking calls.
                log.exception("start-up recovery hook %r failed", hook)

    def _recover_recordings(self) -> list[Path]:
        if self.recordings is None:
            return []
        self.recordings.mkdir(parents=True, exist_ok=True)
        recovered = recover(self.recordings, before_rename=self._index_recovered
                            if self.store is not None else None)
        for path in recovered:
            log.warning("recovered unfinished recording %s", path)
        return recovered

    def _index_recovered(self, part: Path, final: Path) -> None:
        """Index a repaired ``.part`` under its final name before it takes it, the writes
        committed: a start that dies here leaves the ``.part`` to the next, and no file
        in place that nothing indexes (a message take, which no row names, would stay so
        for good). A call's recording is <call id>.wav; other takes of the same call (a
        message: <call id>.msg.wav) are indexed with it but are not its recording."""
        if not self._index_left(final, final.stem.split(".")[0], recovered=True, file=part,
                                wait=True):
            raise OSError(f"{part}: could not be indexed")

    def _index_left(self, path: Path, call_id: str, *, recovered: bool,
                    file: Path | None = None, wait: bool = False) -> bool:
        """Index a recording a crash left (read from ``file`` if it is not at ``path``
        yet), and name it in its call's row when it is the call's own; False (logged
        unless there is no file) when it cannot be read: the box starts all the same,
        and the file stays where it is. With ``wait``, once the writes are committed."""
        assert self.store is not None
        source = path if file is None else file
        try:
            frames = wav_frames(source)
            # Its last write, less its length: when it began, should its call's row have
            # been lost with the crash (a locked-out database), so it is still found by day.
            began = source.stat().st_mtime - frames * TICK
        except FileNotFoundError:
            return False  # not recorded (or not yet at the first flush)
        except (OSError, EOFError, wave.Error) as exc:
            log.error("call %s: recording %s left by a crash is unreadable: %s; not indexed",
                      call_id, path, exc)
            return False
        writes: list[Future[Any]] = [cdr.index_recording(
            self.store, str(path), call_id, None, frames, recovered, undated_at=began)]
        if path.stem == call_id:
            writes.append(cdr.attach_recording(self.store, call_id, path))
            writes.append(cdr.end_crashed_by_recording(self.store, call_id, frames * TICK,
                                                       finished=not recovered))
        if wait:
            for write in writes:
                write.result()
        return True

    def _recording_path(self, call_id: str, answered_at: float) -> Path:
        """Where a call's recording goes: under the day it was answered."""
        assert self.recordings is not None
        day = time.strftime("%Y/%m/%d", time.localtime(answered_at))
        return self.recordings / day / f"{call_id}.wav"

    def _index_finished_recordings(self, recovered: set[Path]) -> None:
        """Index the recordings a crash left finished but not indexed, and give each row
        its recording: the previous engine renamed a recording into place and died before
        its index and CDR writes were committed (a busy database makes that window wide),
        or a start died while recovering. A call's recording is where the engine puts it,
        under the day it was answered. Those just ``recovered`` from their ``.part`` are
        being indexed already. Looked at on every start, not only after a crash found
        open rows: the start that closed them may itself have died."""
        if self.store is None or self.recordings is None:
            return
        for call_id, answered_at, some_indexed in cdr.crashed_unrecorded(self.store):
            path = self._recording_path(call_id, answered_at)
            if not path.exists():
                # Its day folder came from the local time zone of the engine that recorded
                # it; the box's zone may have changed since (time zones are at most 26 h
                # apart, so two days either way).
                path = next((p for p in (self._recording_path(call_id, answered_at + d * DAY)
                                         for d in (-1, 1, -2, 2)) if p.exists()), path)
            if path in recovered:
                continue
            if some_indexed and cdr.is_indexed(self.store, path):
                cdr.attach_recording(self.store, call_id, path)
                continue
            if self._index_left(path, call_id, recovered=False):
                log.warning("indexed recording %s, finished before a crash but not indexed",
                            path)

    # ------------------------------------------------------------------ lines and calls
    def accept(self, line: Line) -> None:
        """Drivers call this with a new inbound line; it is attached on the next tick."""
        if self._stopping:
            line.hangup(CAUSE_SHUTDOWN)
            return
        self._pending.append(line)

    def _accept_far_end(self, line: Line) -> None:
        """``accept`` for drivers whose frames come on the far end's clock: their lines
        take part in the early pass."""
        self._far_end_lines.add(line)
        self.accept(line)

    async def originate(self, driver: Driver, number: str, flow: FlowFn | None = None,
                        caller: str = "", ring_timeout: float = 45.0) -> Call:
        """Place an outbound call on ``driver``; the flow starts at once (it should
        ``await call.wait_answered()``).

        A line that signals the answer (a seat phone, a digital trunk, polarity reversal)
        reports it as an event; otherwise the call's audio is analysed: voice means
        answered, and busy, congestion, unanswered ringback or silence end the call with
        that cause, as an analog FXO port needs (Asterisk calls it up when dialing ends).
        """
        if self._stopping:
            raise LineError(f"{driver.name}: the engine is stopping; {number} is not dialled")
        line = await driver.originate(number, caller)
        if self._stopping:
            # Dialled while the engine began to stop: its calls are already being ended,
            # and this one would outlive the store that records it.
            line.hangup(CAUSE_SHUTDOWN)
            raise LineError(f"{driver.name}: the engine is stopping; {number} is hung up")
        if driver.far_end_clocked:
            self._far_end_lines.add(line)
        call = self._attach(line, flow or self.flow, driver.name)
        if call.state is CallState.DIALING:
            call.progress = CallProgress(max_seconds=ring_timeout)
            call.heard_dialling = deque(maxlen=PRE_ROLL_FRAMES)
            self.dialing.add(call)
        return call

    def _attach(self, line: Line, flow: FlowFn, driver_name: str = "") -> Call:
        # Line ids repeat across runs (a simulated exchange counts from 1 again); the call id
        # must be unique for ever: it names the CDR row and the recording.
        call = Call(self, line, uuid.uuid4().hex, self.clock.wall())
        if line in self._far_end_lines:
            self._far_end_lines.discard(line)
            call.far_end_clocked = True
        call.dtmf_slot = self._dtmf.open()
        call.merger = DigitMerger()
        call.vad = VoiceActivity()
        self.calls.append(call)
        self.stats.calls_started += 1
        if self.store is not None:
            cdr.cdr_start(self.store, call.id, line.id, driver_name, line.direction.value,
                          line.caller, line.callee, call.started_at)
        self._emit("started", call)
        if line.state is LineState.ANSWERED and line.direction is Direction.OUTBOUND:
            self._mark_active(call)
        call.task = self.loop.create_task(self._run_flow(call, flow), name=f"call-{call.id}")
        return call

    async def _run_flow(self, call: Call, flow: FlowFn) -> None:
        cause = CAUSE_NORMAL
        try:
            await flow(call)
        except CallEnded:
            pass
        except asyncio.CancelledError:
            cause = CAUSE_SHUTDOWN
        except Exception:
            log.exception("call %s: flow failed", call.id)
            cause = CAUSE_FLOW_ERROR
        finally:
            if not call.ended:
                await self.end_call(call, cause)

    def answer_call(self, call: Call) -> None:
        call.line.answer()
        self._mark_active(call)

    def _mark_active(self, call: Call) -> None:
        if call.state is CallState.ACTIVE or call.state is CallState.ENDED:
            return
        call.state = CallState.ACTIVE
        call.answered_at = self._wall_of(call)
        self.dialing.discard(call)
        if self.record_calls and self.recordings is not None:
            path = self._recording_path(call.id, call.answered_at)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # Stagger flushes so 600 calls do not all write in the same tick.
                call.recorder = Recorder(path, channels=2, flush_offset=hash(call.id) % 50)
            except OSError as exc:
                # A full or read-only disk costs the recording, never the call.
                log.error("call %s: not recorded: cannot create %s: %s", call.id, path, exc)
        if self.store is not None:
            cdr.cdr_answer(self.store, call.id, call.answered_at)
        call.mark_answered()
        self._emit("answered", call)

    def _wall_of(self, call: Call) -> float:
        """Wall-clock time now on ``call``'s own time line: its start plus the monotonic
        time since."""
        return call.started_at + (self.clock.now() - call.started_mono)

    async def end_call(self, call: Call, cause: str) -> None:
        """End a call and wait until its recording and CDR row are final (the clean-up
        of a call that had already ended too)."""
        done = self._end_now(call, cause) or call.finalised
        if done is not None:
            await asyncio.shield(done)

    def _end_now(self, call: Call, cause: str) -> asyncio.Task[None] | None:
        """The one clean-up path: every ending of every call comes here exactly once.

        The state changes happen now (so this very tick stops feeding the call); closing the
        recording (fsync, rename) and the CDR write run as a task, off the tick.
        """
        if call.state is CallState.ENDED:
            return None
        if call.line.ended and call.line.end_cause:
            # The line ended first (the caller hung up, the line dropped) and its event
            # waits for the next tick: that is how the call ended, not the cause given.
            cause = call.line.end_cause
        call.release_typeahead()  # keys typed ahead and never used are the call's too
        if self._key_rows:
            self._write_keys()  # before the final row, which no later key may change
        call.state = CallState.ENDED
        call.end_cause = cause
        call.ended_at = self._wall_of(call)
        self._prune = True
        if not call.line.ended:
            call.line.hangup(cause)
        self._dtmf.close(call.dtmf_slot)
        self._sounding.discard(call)
        self.collecting.discard(call)
        self.dialing.discard(call)
        if call.bridge is not None:
            call.bridge.remove(call)
        call.fail_pending(cause)
        self.stats.calls_ended += 1
        recorder, call.recorder = call.recorder, None
        task = call.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            # The flow unwinds by itself: its pending action returns (a message being
            # recorded is closed and kept) or raises CallEnded. Only a flow stuck on
            # something else is cancelled, after a grace period.
            self.loop.call_later(FLOW_GRACE_SECONDS, _cancel_if_running, task)
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)
        self._emit("ended", call, cause=cause)
        done = call.finalised = self.loop.create_task(
            self._finalise(call, recorder, cause, call.ended_at))
        self._cleanups.add(done)
        done.add_done_callback(self._cleanups.discard)
        return done

    async def _finalise(self, call: Call, recorder: Recorder | None, cause: str,
                        ended_at: float) -> None:
        path = None
        try:
            if recorder is not None:
                path = await self.close_recorder(recorder, call.id)
        finally:
            # Whatever happened to the recording, the row is made final.
            if self.store is not None:
                end = cdr.cdr_end(self.store, call.id, ended_at, cause,
                                  str(path) if path else None)
                # Waited for (on the writer thread, not the loop): once the engine has
                # stopped, every CDR row is final. Shielded: a flow cancelled meanwhile
                # does not unqueue it (the store runs it anyway).
                if not await asyncio.shield(asyncio.wrap_future(end)):
                    log.warning("call %s: no open call record to end (%s)", call.id, cause)

    async def close_recorder(self, recorder: Recorder, call_id: str, *,
                             index: bool = True) -> Path | None:
        """Close a recorder off the loop (fsync and rename), then index the file."""
        try:
            path = await self.loop.run_in_executor(None, recorder.close)
        except OSError:
            log.exception("call %s: could not close recording %s", call_id, recorder.part_path)
            return None
        if self.store is not None and index:
            frames = recorder.frames_written
            if recorder.error is not None:
                # A disk error cut the recording short: index what the file holds.
                try:
                    frames = await self.loop.run_in_executor(None, wav_frames, path)
                except (OSError, EOFError, wave.Error) as exc:
                    log.error("call %s: recording %s cut short by %s cannot be read back "
                              "(%s); indexed as written", call_id, path, recorder.error, exc)
            cdr.index_recording(self.store, str(path), call_id, None, frames, False)
        return path

    def close_later(self, recorder: Recorder, call_id: str, *, index: bool = True) -> None:
        """:meth:`close_recorder` as a task of its own, for a flow that cannot wait (it is
        being cancelled); :meth:`settle` and the engine's stop wait for it."""
        task = self.loop.create_task(self.close_recorder(recorder, call_id, index=index))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def settle(self) -> None:
        """Wait until every ended call is fully cleaned up: its flow has unwound (closing
        any message it was recording), its recording is in place and its CDR row final."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    def create_bridge(self, *calls: Call, name: str = "") -> Bridge:
        """A bridge holding ``calls``: each hears the others, mixed by the engine."""
        bridge = Bridge(name)
        for call in calls:
            bridge.add(call)
        return bridge

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` of the engine's ticks, or until it stops: the pace of the
        services beside the calls (reminder passes, the fax resend poller). Counted in
        ticks, so a manual clock is not dragged forward under the calls, and woken by the
        stop, so whoever stops the box does not wait out an interval in silence."""
        done: asyncio.Future[Any] = self.wait_ticks(None, seconds_to_ticks(seconds))
        stopped: asyncio.Future[Any] = asyncio.ensure_future(self.stopped.wait())
        try:
            await asyncio.wait({done, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    def wait_ticks(self, call: Call | None, ticks: int, *, start: int | None = None
                   ) -> asyncio.Future[None]:
        """A future done ``ticks`` ticks after tick ``start`` (default: this one), in time
        for that tick's outbound frames (``call`` may be None: the ACD times ring and
        wrap-up periods that belong to no single call)."""
        fut: asyncio.Future[None] = self.loop.create_future()
        if call is not None:
            # The call's end wakes it: a flow waiting out a pause then finds the call over
            # (at once, and the engine's stop does not wait its grace period for it).
            if call.state is CallState.ENDED:
                fut.set_result(None)
                return fut
            call.timers.add(fut)
            fut.add_done_callback(call.timers.discard)
        at = (self.tick_no if start is None else start) + ticks
        heapq.heappush(self._timers, (at, next(self._seq), fut))
        return fut

    def emit(self, what: str, call: Call, **info: Any) -> None:
        """Tell the event listener (console, supervisor page, tests) what ``call`` did."""
        self._emit(what, call, **info)

    def _emit(self, what: str, call: Call, **info: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(what, call, info)
            except Exception:
                log.exception("event listener failed on %s", what)

    # ------------------------------------------------------------------ the tick
    async def _tick(self, n: int) -> None:
        for driver in self.drivers:
            driver.before_tick(n)
        if self._pending:
            self._attach_pending()
        calls = self.calls
        if self._prune:
            # Only after a call ended: no scan of every call on every tick.
            self._prune = False
            calls = self.calls = [c for c in calls if c.state is not CallState.ENDED]

        # What the callers hear next depends only on the keys and line events: those go
        # first, then the lines whose flows a key woke are written at once, and only then
        # comes the work whose result this tick's output does not need (VAD, call-progress
        # analysis, messages being recorded, the other lines, the recordings).
        heard = self._inbound(calls)
        woke = heard.woke | self._timeouts(n)
        if woke:
            # Let the flows that this tick's keys and events woke set their next prompt,
            # so the reply to a key starts in the same tick the key was detected.
            await asyncio.sleep(0)
        sent, self._sent = self._sent, []
        done, self._early_sent = self._early_sent, set()
        keyed = self._keyed
        if keyed:
            # The answer to a key is what a caller waits for; everything else just keeps
            # flowing. Write those lines first, before the rest of the tick's work.
            keyed = [c for c in dict.fromkeys(keyed) if c not in done]
            self._keyed = []
            self._outbound(keyed, sent)
            done.update(keyed)
        if heard.rows and self._listen(heard):
            # A message that ended, an outbound call answered or given up: let its flow
            # choose what this tick sends.
            await asyncio.sleep(0)
        if done:
            self._outbound([c for c in self.calls if c not in done], sent)
        else:
            self._outbound(self.calls, sent)
        self._record(sent)
        if self._caught_up:
            for call in self._caught_up:
                call.catch_up.clear()
            self._caught_up.clear()
        if self._key_rows and n % KEY_WRITE_TICKS == 0:
            self._write_keys()
        if n >= self._alive_due and self.store is not None:
            # Due by tick, not on a multiple of it: a stall skips ticks, and a skipped
            # mark would let a crash soon after end its calls up to 10 s early.
            self._alive_due = n + ALIVE_TICKS
            cdr.alive(self.store, self.clock.wall())
        for driver in self.drivers:
            driver.after_tick(n)

    def _attach_pending(self) -> None:
        """Make calls of the lines offered since the last tick. A line that has already
        ended (the caller hung up within the tick) still becomes a call: it gets its CDR
        row, and its hang-up, waiting among its events, ends it in this same tick."""
        pending, self._pending = self._pending, []
        for line in pending:
            try:
                self._attach(line, self.flow, _driver_name(line))
            except Exception:
                log.exception("line %s: could not start a call; hanging up", line.id)
                line.hangup(CAUSE_LINE_DROPPED)

    async def _early(self, n: int) -> None:
        """The early pass of tick ``n``, for lines on the far end's clock: the frames that
        have come so far go through DTMF detection now, and a line that keyed gets its
        answer (this tick's outbound frame) at once, instead of every frame waiting for the
        last of them and the whole batch. The tick takes the rest; everything else (VAD,
        the other lines' frames, the recordings) stays with the tick."""
        # The keys found now are tick n's (collectors and timers count from it); the lines
        # taken are marked with it, since after a stall the tick may skip ahead.
        self.tick_no = n
        heard = self._early_heard = _Heard(early_tick=n)
        frames = heard.frames
        rows = heard.rows
        messages = heard.messages
        ended = CallState.ENDED
        for call in self.calls:
            if not call.far_end_clocked or call.state is ended:
                continue
            line = call.line
            if line.events:
                heard.woke |= self._line_events(call)
                if call.state is ended:
                    continue
            inbound = line.inbound
            if not inbound:
                continue
            call.early_tick = n
            frame = call.inbound_frame = inbound.popleft()
            frames.append(frame)
            rows.append(call)
            if call.message is not None:
                messages.append((call, call.message))
        if rows:
            # Copies: the tick appends its own lines to heard.rows and heard.frames.
            heard.woke |= self._detect(heard, list(rows), list(frames))
        if not self._keyed:
            return
        await asyncio.sleep(0)  # the flows the keys woke choose their answer
        keyed = list(dict.fromkeys(self._keyed))
        # A line whose frame would mix or feed this tick's other inbound frames (a bridge,
        # a fax modem) waits for the tick, ahead of the others.
        self._keyed = [c for c in keyed if not c.answers_alone()]
        alone = [c for c in keyed if c.answers_alone()]
        self._outbound(alone, self._sent)
        self._early_sent.update(alone)

    def _inbound(self, calls: list[Call]) -> _Heard:
        """Line events, this tick's inbound frames and the keys in them (DTMF detection):
        what must be known before any flow can answer. The rest of the inbound DSP is
        :meth:`_listen`, after the keyed lines are written. Frames the early pass took
        are already detected; they join the tick's batches here."""
        heard, self._early_heard = self._early_heard, None
        if heard is None:
            heard = _Heard()
        taken = heard.early_tick  # the early pass's mark on the lines it took (-2: none)
        frames = heard.frames
        rows = heard.rows
        messages = heard.messages
        first = len(rows)
        ended = CallState.ENDED
        late = 0
        tick = self.tick_no
        for call in calls:
            line = call.line
            if line.events:
                heard.woke |= self._line_events(call)
                if call.state is ended:
                    continue
            if call.early_tick == taken:
                continue
            inbound = line.inbound  # Line.read_frame, inlined: this loop runs for every call
            if not inbound:
                call.frames_late += 1
                call.late_tick = tick
                call.inbound_frame = SILENCE
                late += 1
                continue
            frame = call.inbound_frame = inbound.popleft()
            frames.append(frame)
            rows.append(call)
            if call.message is not None:
                # Only a message being recorded before this tick's flows ran takes this
                # tick's frames (a flow a key wakes starts recording after the key).
                messages.append((call, call.message))
        self.stats.frames_late += late
        if len(rows) > first:
            heard.woke |= self._detect(heard, rows[first:], frames[first:])
        if not rows:
            return heard
        # Lines with more than one frame queued (a frame that came late last tick, or audio
        # that arrived before the call was attached) catch up now: every frame still goes
        # through the detectors and into the recording, and the backlog does not become a
        # standing delay on every later key.
        while True:
            rows = [c for c in rows if c.line.inbound and c.state is not ended]
            if not rows:
                break
            frames = [c.line.inbound.popleft() for c in rows]
            for call, frame in zip(rows, frames, strict=True):
                call.catch_up.append(frame)
            self._caught_up.extend(rows)
            heard.woke |= self._detect(heard, rows, frames)
        return heard

    def _detect(self, heard: _Heard, rows: list[Call], frames: list[bytes]) -> bool:
        """One batch of inbound frames (one per call) through DTMF detection; the batch is
        kept for :meth:`_listen`."""
        woke = False
        self.stats.frames_in += len(rows)
        block = np.frombuffer(b"".join(frames), dtype="<i2").reshape(len(rows), SAMPLES_PER_FRAME)
        heard.batches.append((rows, frames, block))
        slots = [c.dtmf_slot for c in rows]
        for i, digit in self._dtmf.process(slots, block):
            call = rows[i]
            merger = call.merger
            if merger is not None and merger.inband(digit, call.samples_in):
                self._key(call, digit)
                self._sounding.add(call)
                woke = True
        for call in rows:
            call.samples_in += SAMPLES_PER_FRAME
        if self._sounding:
            self._follow_held_keys()
        return woke

    def _follow_held_keys(self) -> None:
        """Keep an in-band key's time at its tones' end while they sound, so the kind 0x03
        report Asterisk sends when a long press ends is still taken as the same key
        (:class:`DigitMerger`). Only calls that keyed in-band are looked at."""
        for call in list(self._sounding):
            merger = call.merger
            if (call.state is CallState.ENDED or merger is None or not merger.inband_open
                    or not self._dtmf.in_key(call.dtmf_slot)):
                self._sounding.discard(call)
            else:
                merger.held(call.samples_in)

    def _listen(self, heard: _Heard) -> bool:
        """The inbound DSP no reply to a key waits for, batch by batch in stream order:
        call-progress analysis, VAD, and the frames of messages being recorded."""
        woke = False
        start, end = SpeechEvent.START, SpeechEvent.END
        ended_state = CallState.ENDED
        messages = dict(heard.messages) if heard.messages else None
        for rows, frames, block in heard.batches:
            if self.dialing:
                woke |= self._progress(rows, frames)
            levels = frame_levels_dbfs(block)
            for call, frame, level in zip(rows, frames, levels.tolist(), strict=True):
                if call.state is ended_state:
                    continue  # ended since its frame was taken (a flow a key woke hung up)
                vad = call.vad
                if vad is not None:
                    event = vad.update(frame, level)
                    if event is not None:
                        if event is start:
                            call.in_speech = True
                            self._emit("speech-start", call)
                        elif event is end:
                            call.in_speech = False
                            self._emit("speech-end", call)
                if messages is not None:
                    take = messages.get(call)
                    if take is not None and take is call.message:
                        call.on_inbound(frame, call.in_speech)
                        woke = True
        return woke

    def _progress(self, rows: list[Call], frames: list[bytes]) -> bool:
        """Call-progress analysis of the outbound calls still waiting for an answer."""
        woke = False
        for i, call in enumerate(rows):
            progress = call.progress
            if progress is None or call not in self.dialing:
                continue
            frame = frames[i]
            outcome = progress.feed(frame)
            heard = call.heard_dialling
            if outcome is None:
                if heard is not None:
                    if progress.tone:
                        heard.clear()  # the recording starts after the last ring
                    else:
                        heard.append(frame)
                continue
            woke = True
            call.progress_outcome = outcome.value
            call.heard_dialling = None
            if outcome is Outcome.VOICE:
                self._mark_active(call)
                recorder = call.recorder
                if recorder is not None and heard:
                    # The callee's "喂" came before the answer was certain: it goes first.
                    for before in heard:
                        recorder.write_stereo(before, SILENCE)
            else:
                self._end_now(call, _PROGRESS_CAUSES[outcome])
        return woke

    def _line_events(self, call: Call) -> bool:
        events = call.line.events
        woke = False
        while events:
            event = events.popleft()
            if event.kind is EventKind.DTMF:
                merger = call.merger
                if merger is None or merger.outofband(event.digit, call.samples_in):
                    self._key(call, event.digit)
                    woke = True
            elif event.kind is EventKind.ANSWERED:
                self._mark_active(call)
                woke = True
            elif event.kind is EventKind.HANGUP:
                self._end_now(call, event.cause or CAUSE_LINE_DROPPED)
                woke = True
        return woke

    def _key(self, call: Call, digit: str) -> None:
        self._keyed.append(call)
        secret = call.mask_keys
        if call.on_key(digit):
            self.record_key(call, digit, secret)

    def record_key(self, call: Call, digit: str, secret: bool) -> None:
        """A key the call used: into its keys, its CDR row and the key event, as ``x``
        when ``secret``."""
        shown = MASKED_KEY if secret else digit
        call.keys += shown
        self._key_rows.append((call.id, shown))
        self._emit("key", call, digit=shown)

    def _write_keys(self) -> None:
        """The CDR rows' keys, written after the tick's frames have gone (the store's
        writer thread shares the engine's core and would otherwise run between a key and
        its answer), every KEY_WRITE_TICKS ticks. A call that ends first has its keys
        written before its final row."""
        rows, self._key_rows = self._key_rows, []
        if self.store is not None:
            cdr.cdr_keys_many(self.store, rows)

    def _timeouts(self, n: int) -> bool:
        woke = False
        timers = self._timers
        while timers and timers[0][0] <= n:
            _, _, fut = heapq.heappop(timers)
            if not fut.done():
                fut.set_result(None)
                woke = True
        for call in list(self.collecting):
            # Only a timeout that ends a collection wakes a flow; a call merely waiting for
            # keys must not cost every tick an extra pass of the event loop.
            woke |= call.on_tick(n)
        return woke

    def _outbound(self, calls: list[Call], sent: list[tuple[Call, bytes]]) -> None:
        """Write this tick's frame to each line; ``sent`` gets what went out, to record."""
        ended = CallState.ENDED
        tick = self.tick_no
        for call in calls:
            if call.state is ended:
                continue
            try:
                out = call.next_output() if call.source is not None else None
                if out is None:
                    bridge = call.bridge
                    out = SILENCE if bridge is None else bridge.frame_for(call, tick)
                call.line.write_frame(out)
            except Exception:
                # A source (a fax modem's processor) or a line that fails ends its own
                # call; raised from here it would stop every later line's frame and every
                # recording, tick after tick.
                log.exception("call %s: its outbound audio failed; hanging up", call.id)
                self._end_now(call, CAUSE_FLOW_ERROR)
                continue
            call.out_tick = tick
            if call.recorder is not None:
                sent.append((call, out))

    def _record(self, sent: list[tuple[Call, bytes]]) -> None:
        """Append this tick's frames to the recordings, once every line has been written."""
        for call, out in sent:
            rec = call.recorder
            if rec is None:
                continue  # the call ended after its frame went out
            # Left the caller, right the box: one stereo frame per inbound frame.
            rec.write_stereo(call.inbound_frame, out)
            if call.catch_up:
                # Frames caught up this tick: the box said nothing over them.
                for frame in call.catch_up:
                    rec.write_stereo(frame, SILENCE)


@dataclass(slots=True)
class _Heard:
    """One tick's inbound side, between key detection and the rest of the DSP."""

    early_tick: int = -2  # taken by the early pass of this tick (no call is marked -2)
    woke: bool = False
    rows: list[Call] = field(default_factory=list)  # calls whose frame came, in batch order
    frames: list[bytes] = field(default_factory=list)
    batches: list[tuple[list[Call], list[bytes], np.ndarray]] = field(default_factory=list)
    messages: list[tuple[Call, object]] = field(default_factory=list)  # taking a message


def _phase_tables() -> tuple[np.ndarray, np.ndarray]:
    """For Engine._align_phase, [i, j] of a frame arriving in bin j and a tick at the start
    of bin i: how long the frame waits for it, and 1 when it arrives within PHASE_MARGIN
    before the tick or PHASE_AFTER after it."""
    bins = np.arange(_PHASE_BINS)
    gap = np.mod(bins[:, None] - bins[None, :], _PHASE_BINS)  # bin j's start to the tick
    waits = np.mod(gap - 0.5, _PHASE_BINS) * PHASE_BIN
    before, after = round(PHASE_MARGIN / PHASE_BIN), round(PHASE_AFTER / PHASE_BIN)
    near = ((gap >= 1) & (gap <= before)) | (gap == 0) | (gap > _PHASE_BINS - after)
    return waits, near.astype(float)


_PHASE_BINS = round(TICK / PHASE_BIN)
_PHASE_WAITS, _PHASE_NEAR = _phase_tables()

_PROGRESS_CAUSES = {
    Outcome.BUSY: CAUSE_BUSY,
    Outcome.CONGESTION: CAUSE_CONGESTION,
    Outcome.RINGBACK: CAUSE_NO_ANSWER,
    Outcome.SILENCE: CAUSE_NO_ANSWER,
}


def _freeze_heap() -> None:
    """Take everything alive at start-up out of the cyclic garbage collector's sight.

    A full collection walks every tracked object: with the IVR, the store and the web
    admin loaded that is some 100 000, and the walk stopped the tick for 35 to 55 ms now
    and then; at 600 calls one such stop made a run's p99 tick lateness 35 ms instead of
    under 4. What start-up built (modules, prompts, flows, configuration) lives as long
    as the process, so after one collection it is frozen (gc.freeze); collections then
    walk only what the calls made since. Objects freed by their reference count are
    freed as before."""
    started = time.monotonic()
    gc.collect()
    gc.freeze()
    log.info("heap frozen: %d objects out of the collector's walk (%.0f ms)",
             gc.get_freeze_count(), 1000 * (time.monotonic() - started))


def _cancel_if_running(task: asyncio.Task[None]) -> None:
    if not task.done():
        log.warning("flow %s still running %.0f s after its call ended; cancelled",
                    task.get_name(), FLOW_GRACE_SECONDS)
        task.cancel()


def _driver_name(line: Line) -> str:
    return line.driver_name or type(line).__module__

