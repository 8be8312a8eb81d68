"""The real clock's tick sleep: a timer file wakes the loop at the deadline, never before it,
on uvloop and on asyncio's own loop, and stays usable after a cancelled or a shared wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from appliance.calls.clock import MonotonicClock, TimerFile

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


def run(factory: Callable[[], asyncio.AbstractEventLoop],
        main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def lateness(clock: MonotonicClock, factory: Callable[[], asyncio.AbstractEventLoop],
             count: int, step: float) -> list[float]:
    """Sleep until ``count`` deadlines ``step`` seconds apart; how late each wake was."""
    woke: list[float] = []

    async def main() -> None:
        start = clock.now()
        for n in range(1, count + 1):
            deadline = start + n * step
            await clock.sleep_until(deadline)
            woke.append(clock.now() - deadline)

    run(factory, main)
    return woke


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_tick_sleeps_wake_at_their_deadlines_never_before(loop_name: str) -> None:
    clock = MonotonicClock()
    assert isinstance(clock._timer, TimerFile)
    woke = lateness(clock, LOOPS[loop_name], 25, 0.004)
    assert len(woke) == 25
    assert min(woke) >= 0.0  # never early: the tick's frames are paced from these
    assert max(woke) < 0.5  # and it does wake (how late is a benchmark's figure)


def test_a_cancelled_sleep_leaves_the_timer_usable() -> None:
    clock = MonotonicClock()
    timer = clock._timer
    assert timer is not None

    async def main() -> None:
        task = asyncio.create_task(clock.sleep_until(clock.now() + 0.5))
        await asyncio.sleep(0.01)
        assert timer.busy
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not timer.busy
        deadline = clock.now() + 0.01
        await clock.sleep_until(deadline)
        assert clock.now() >= deadline

    run(uvloop.new_event_loop, main)


def test_sleeps_at_once_and_long_sleeps_still_wake() -> None:
    """Only one wait holds the timer file; the others (a fax retry, a second sleeper) use
    the loop's timers, and every one wakes after its own deadline."""
    clock = MonotonicClock()

    async def main() -> None:
        now = clock.now()
        deadlines = [now + 0.03, now + 0.01, now + 0.02]
        woke: dict[int, float] = {}

        async def sleeper(i: int) -> None:
            await clock.sleep_until(deadlines[i])
            woke[i] = clock.now()

        await asyncio.gather(*(sleeper(i) for i in range(3)))
        assert all(woke[i] >= deadlines[i] for i in range(3))
        past = clock.now()
        await clock.sleep_until(past - 1.0)  # a deadline gone by returns at once
        assert clock.now() - past < 0.5

    run(uvloop.new_event_loop, main)


def test_without_a_timer_file_ticks_wake_on_the_loop_never_early(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where timerfd is missing the clock still works, on the loop's own timers, and its
    slack keeps uvloop's rounding from waking a tick before its deadline."""

    def no_timerfd() -> TimerFile:
        raise OSError(38, "timerfd_create failed")

    monkeypatch.setattr("appliance.calls.clock.TimerFile", no_timerfd)
    clock = MonotonicClock()
    assert clock._timer is None
    woke = lateness(clock, uvloop.new_event_loop, 20, 0.0035)
    assert len(woke) == 20 and min(woke) >= 0.0
