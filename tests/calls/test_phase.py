"""The tick follows far-end clocked frames: it settles just after their arrival, wherever the
far end's clock puts it, is not held back by a few stragglers, and stays on the fixed grid
when arrivals are spread all over it."""

from __future__ import annotations

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import ManualClock
from appliance.calls.engine import (
    EARLY_MIN_LEAD,
    PHASE_MARGIN,
    PHASE_STEP,
    PHASE_WINDOW_TICKS,
    Engine,
)
from drivers.base import AcceptLine, Driver

TICK = 0.02
START = 1000.0


class FarEnd(Driver):
    """Frames from a peer on its own clock: ``offset`` from the engine's grid, with jitter."""

    far_end_clocked = True

    def __init__(self, offset: float, jitter: float, channels: int = 20, seed: int = 1,
                 stragglers: float = 0.0) -> None:
        self.offset = offset
        self.jitter = jitter
        self.stragglers = stragglers  # this share comes up to 12 ms late
        self.channels = channels
        self.rng = np.random.default_rng(seed)
        self.window = 0

    async def start(self, accept: AcceptLine) -> None:
        return None

    async def stop(self) -> None:
        return None

    def take_arrivals(self) -> list[float]:
        ticks = np.arange(self.window * PHASE_WINDOW_TICKS, (self.window + 1) * PHASE_WINDOW_TICKS)
        self.window += 1
        due = np.repeat(START + ticks * TICK + self.offset, self.channels)
        late = (self.rng.random(len(due)) < self.stragglers) * self.rng.uniform(0, 0.012, len(due))
        return list(due + self.rng.normal(0.0, self.jitter, len(due)) + late)


async def _idle(call: Call) -> None:
    return None


def engine_for(driver: FarEnd) -> Engine:
    engine = Engine(clock=ManualClock(), drivers=[driver], flow=_idle)
    engine.start_time = START
    return engine


def settle(engine: Engine, windows: int) -> list[float]:
    phases = []
    for _ in range(windows):
        engine._align_phase()
        phases.append(engine.phase)
    return phases


def test_the_tick_settles_just_after_frames_that_arrive_6_ms_early() -> None:
    engine = engine_for(FarEnd(offset=-0.006, jitter=0.0002))
    phases = settle(engine, 12)
    # A millisecond a judgement at most: no jump that could strand frames.
    assert np.abs(np.diff([0.0, *phases])).max() <= PHASE_STEP + 1e-9
    # Just after all but half a per cent of arrivals (2.58 sigma), then the margin.
    expected = -0.006 + 2.58 * 0.0002 + PHASE_MARGIN
    assert abs(phases[-1] - expected) < 0.0002, phases
    assert abs(phases[-1] - phases[-2]) < 0.0001  # settled, not hunting


def test_a_cluster_just_after_a_grid_point_moves_the_tick_a_little_later() -> None:
    engine = engine_for(FarEnd(offset=0.0003, jitter=0.0001))
    phases = settle(engine, 4)
    expected = 0.0003 + 2.58 * 0.0001 + PHASE_MARGIN
    assert abs(phases[-1] - expected) < 0.0002, phases


def test_a_few_stragglers_are_left_to_the_next_tick() -> None:
    # 0.3 % come up to 12 ms late: the tick stays with the rest rather than wait for them.
    engine = engine_for(FarEnd(offset=-0.006, jitter=0.0002, stragglers=0.003))
    phases = settle(engine, 12)
    assert phases[-1] < -0.004, phases


def test_arrivals_spread_over_the_tick_keep_the_fixed_grid() -> None:
    engine = engine_for(FarEnd(offset=-0.006, jitter=0.006))
    assert settle(engine, 5) == [0.0] * 5


def test_the_early_pass_goes_when_half_the_frames_are_in() -> None:
    # Frames spread over a few milliseconds (a load sending hundreds of calls' frames one
    # after another): the early pass takes the first half of them, 2.58 sigma before the
    # tick (which waits for all but the last half per cent).
    engine = engine_for(FarEnd(offset=-0.006, jitter=0.0012))
    settle(engine, 12)
    assert abs(engine.early_lead - 2.58 * 0.0012) < 0.0003, engine.early_lead


def test_no_early_pass_when_the_frames_come_together() -> None:
    engine = engine_for(FarEnd(offset=-0.006, jitter=0.0001))
    settle(engine, 12)
    assert EARLY_MIN_LEAD > 2.58 * 0.0001
    assert engine.early_lead == 0.0
