"""The engine's injected clock.

Every outgoing stream is paced against a fixed start (``start + n × 20 ms``), never by
sleeping 20 ms in a loop, so scheduling jitter never accumulates into drift. Production
uses :class:`MonotonicClock`; tests and benchmarks of logic use :class:`ManualClock`, which
jumps straight to the next deadline so an hour of calls runs in seconds with exactly the
same code path.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

#: sleeps shorter than this wake on the timer file (the tick's); longer ones on asyncio's
PRECISE_BELOW_S = 1.0
#: added to a sleep on the event loop's timers, which may round a wait down
LOOP_TIMER_SLACK_S = 0.001
_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerFile:
    """A Linux timerfd on CLOCK_MONOTONIC that the event loop watches, for the tick's wake-up.

    uvloop (libuv) keeps its timers in whole milliseconds, so a tick slept with asyncio
    wakes up to a millisecond late (and now and then a fraction early). A timer file set
    to the deadline's absolute time wakes the loop's own poll within microseconds.
    """

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                  ctypes.c_void_p]
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd: int = fd
        self.busy = False
        self._spec = _Itimerspec()

    async def sleep_until(self, deadline: float) -> None:
        """Wait until CLOCK_MONOTONIC reaches ``deadline`` (one waiter at a time)."""
        loop = asyncio.get_running_loop()
        # Rounded up to the nanosecond: the wake-up must never come before the deadline.
        whole = int(deadline)
        nsec = math.ceil((deadline - whole) * 1e9)
        if nsec >= 1_000_000_000:
            whole, nsec = whole + 1, nsec - 1_000_000_000
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = whole, nsec
        if self._settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        done: asyncio.Future[None] = loop.create_future()
        self.busy = True
        loop.add_reader(self.fd, self._expired, done)
        try:
            await done
        finally:
            loop.remove_reader(self.fd)
            self.busy = False

    def _expired(self, done: asyncio.Future[None]) -> None:
        try:
            os.read(self.fd, 8)  # the expiry count; settime resets it
        except BlockingIOError:
            return
        if not done.done():
            done.set_result(None)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


class Clock(Protocol):
    #: whether now() is CLOCK_MONOTONIC, the clock network arrival times are taken on
    real_time: bool

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Unix time, for records people read (CDR start and end)."""
        ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """The real clock: CLOCK_MONOTONIC and the wall clock. Short sleeps (the tick's) wake
    on a :class:`TimerFile`, to the microsecond; others, or where there is none, on
    asyncio's timers."""

    real_time = True

    def __init__(self) -> None:
        self._timer: TimerFile | None = None
        try:
            self._timer = TimerFile()
        except (OSError, AttributeError) as exc:  # not Linux: asyncio's timers do
            log.info("no timer file (%s): ticks wake on the event loop's timers", exc)

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        timer = self._timer
        if 0 < delay < PRECISE_BELOW_S and timer is not None and not timer.busy:
            await timer.sleep_until(deadline)
        elif delay > 0:
            # uvloop's millisecond timers can fire a fraction of a millisecond before the
            # deadline: wait a millisecond more, and again while still early.
            while delay > 0:
                await asyncio.sleep(delay + LOOP_TIMER_SLACK_S)
                delay = deadline - time.monotonic()
        else:
            # Still yield, so a loop that is behind lets I/O callbacks run between ticks.
            await asyncio.sleep(0)


class ManualClock:
    """A clock that advances only when the engine waits, to exactly the deadline.

    ``hold``, if given, is called before every move and may block: real-time work the
    simulated world must not outrun (a test's store writes, whose commits a flow awaits)
    finishes first, as :class:`InlineExecutor` does for pooled work."""

    real_time = False

    def __init__(self, start: float = 0.0, wall_start: float = 1_780_000_000.0, *,
                 hold: Callable[[], object] | None = None) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.hold = hold

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def step_wall(self, seconds: float) -> None:
        """Move the wall clock alone, as NTP steps a box's clock (monotonic time runs on)."""
        self._wall_offset += seconds

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep_until(self, deadline: float) -> None:
        if self.hold is not None:
            self.hold()
        if deadline > self._now:
            self._now = deadline
        await asyncio.sleep(0)


#: how long a manual clock waits for one store write before it goes on without it
WRITE_HOLD_S = 5.0


class Writer(Protocol):
    """What :class:`WritesTakeNoTime` needs of a store (``appliance.store.db.Store``)."""

    writes_finished: int

    def wait_written(self, timeout: float | None = None) -> bool: ...


class WritesTakeNoTime:
    """A manual clock's ``hold`` for a store: simulated time stands still while writes are
    in flight. A flow that awaits a commit (a reminder attempt opened before its call, a
    claim report) would otherwise see as many ticks pass as the writer thread takes real
    milliseconds, and on a loaded machine that is seconds of a call. A write still running
    after :data:`WRITE_HOLD_S` (the database locked by another process) is given up on,
    and the clock stops waiting until the writer makes progress again."""

    def __init__(self, store: Writer) -> None:
        self.store = store
        self._stuck_at = -1

    def __call__(self) -> None:
        if self.store.writes_finished == self._stuck_at:
            return
        if not self.store.wait_written(WRITE_HOLD_S):
            self._stuck_at = self.store.writes_finished


class InlineExecutor(ThreadPoolExecutor):
    """Runs blocking work (a lookup, rendering a fax page) at once, on the loop: the
    executor to go with a :class:`ManualClock`. That clock does not wait for a thread pool,
    so pooled work would take as many simulated seconds as the machine is busy, and a fax
    machine waiting for the box would give up. A ThreadPoolExecutor only so asyncio takes
    it as the loop's default; it starts no thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future
