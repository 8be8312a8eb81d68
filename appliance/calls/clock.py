"""The engine's injected clock.

Every outgoing stream is paced against a fixed start (``start + n × 20 ms``), never by
sleeping 20 ms in a loop, so scheduling jitter never accumulates into drift. Production
uses :class:`MonotonicClock`; tests and benchmarks of logic use :class:`ManualClock`, which
jumps straight to the next deadline so an hour of calls runs in seconds with exactly the
same code path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


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
    """The real clock: asyncio's loop time (CLOCK_MONOTONIC) and the wall clock."""

    real_time = True

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            # Still yield, so a loop that is behind lets I/O callbacks run between ticks.
            await asyncio.sleep(0)


class ManualClock:
    """A clock that advances only when the engine waits, to exactly the deadline."""

    real_time = False

    def __init__(self, start: float = 0.0, wall_start: float = 1_780_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep_until(self, deadline: float) -> None:
        if deadline > self._now:
            self._now = deadline
        await asyncio.sleep(0)


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
