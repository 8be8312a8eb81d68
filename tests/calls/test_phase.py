"""The tick follows far-end clocked frames: it settles just after their arrival, wherever the
far end's clock puts it, is not held back by a few stragglers, and stays on the fixed grid
when arrivals are spread all over it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import ManualClock
from appliance.calls.engine import (
    EARLY_MIN_LEAD,
    PHASE_LATE_SHARE,
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




class Arrivals(FarEnd):
    """Arrival times made by ``make(window)`` for each judgement's window of ticks."""

    def __init__(self, make: Callable[[np.ndarray], np.ndarray]) -> None:
        super().__init__(offset=0.0, jitter=0.0)
        self.make = make

    def take_arrivals(self) -> list[float]:
        ticks = np.arange(self.window * PHASE_WINDOW_TICKS, (self.window + 1) * PHASE_WINDOW_TICKS)
        self.window += 1
        return list(self.make(ticks))


def lines(ticks: np.ndarray, offset: float | np.ndarray, jitter: float, channels: int,
          rng: np.random.Generator) -> np.ndarray:
    due = np.repeat(START + ticks * TICK + offset, channels)
    return due + rng.normal(0.0, jitter, len(due))


def late_share(arrivals: np.ndarray, phase: float) -> float:
    """The share of arrivals within PHASE_MARGIN before the tick or a millisecond after."""
    around = np.mod(arrivals - START - phase + TICK / 2, TICK) - TICK / 2
    return float(np.mean((around > -PHASE_MARGIN) & (around < 0.001)))


def test_arrivals_spread_over_the_tick_move_it_to_where_fewer_come() -> None:
    # Centred 6 ms before the grid point, sigma 6 ms: thinnest 1 to 6 ms after it.
    driver = FarEnd(offset=-0.006, jitter=0.006, channels=100)
    engine = engine_for(driver)
    phases = settle(engine, 20)
    assert np.abs(np.diff([0.0, *phases])).max() <= PHASE_STEP + 1e-9
    assert 0.001 <= phases[-1] <= 0.0065, phases
    arrivals = np.array(driver.take_arrivals())
    assert late_share(arrivals, phases[-1]) < late_share(arrivals, 0.0) - 0.01


def test_arrivals_all_over_the_tick_leave_it_where_it_is() -> None:
    rng = np.random.default_rng(3)
    offsets = np.linspace(0, TICK, 40, endpoint=False)  # 40 cards, each its own phase
    engine = engine_for(Arrivals(lambda ticks: np.concatenate(
        [lines(ticks, o, 0.0001, 1, rng) for o in offsets])))
    assert settle(engine, 5) == [0.0] * 5


def test_the_tick_follows_a_drifting_card_across_the_grid_point_without_walking_back() -> None:
    # A card 200 ppm slow: its frames come 0.2 ms later every second, a whole tick in 100 s.
    rng = np.random.default_rng(4)
    drift = 200e-6 * PHASE_WINDOW_TICKS * TICK
    engine = engine_for(Arrivals(lambda ticks: lines(
        ticks, -0.006 + drift * (ticks[0] // PHASE_WINDOW_TICKS), 0.0002, 20, rng)))
    phases = settle(engine, 150)
    after = -0.006 + 2.58 * 0.0002 + PHASE_MARGIN
    # Settled after a few judgements, then a steady 0.2 ms later each second: across the
    # grid point (at 30 s) and on, never a step back.
    for k in range(10, 150):
        assert abs(phases[k] - (after + drift * k)) < 0.0003, (k, phases[k])
    assert min(np.diff(phases[10:])) > 0


def test_two_cards_out_of_step_each_keep_their_frames_on_time() -> None:
    # Ten lines on a card 0.15 ms before the grid point, ten on one 10 ms after it.
    rng = np.random.default_rng(5)

    def both(ticks: np.ndarray) -> np.ndarray:
        return np.concatenate([lines(ticks, -0.00015, 0.0001, 10, rng),
                               lines(ticks, 0.010, 0.0001, 10, rng)])

    engine = engine_for(Arrivals(both))
    settle(engine, 12)
    assert late_share(both(np.arange(1000, 1050)), engine.phase) <= PHASE_LATE_SHARE
    # Just after one of the cards: its frames wait under 1.5 ms.
    waits = np.mod(engine.phase - np.array([-0.00015, 0.010]), TICK)
    assert waits.min() < 0.0015, engine.phase


def test_a_burst_of_late_frames_does_not_move_the_tick() -> None:
    # Once a second every line's frame comes 9 ms late (a network hiccup): 2 % of them.
    rng = np.random.default_rng(6)

    def hiccup(ticks: np.ndarray) -> np.ndarray:
        offset = np.where(ticks % PHASE_WINDOW_TICKS == 17, -0.006 + 0.009, -0.006)
        return lines(ticks, offset, 0.0002, 20, rng)

    engine = engine_for(Arrivals(hiccup))
    phases = settle(engine, 20)
    expected = -0.006 + 2.58 * 0.0002 + PHASE_MARGIN
    assert all(abs(p - expected) < 0.0003 for p in phases[8:]), phases


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
