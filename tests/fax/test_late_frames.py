"""A fax over a line on the far end's clock (AudioSocket) whose frames now and then miss
their tick and come with the next: the box's modem gets every frame in order and nothing
else, so the page still arrives pixel for pixel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.fax.session import FaxResult, FaxSession
from appliance.media.frame import SILENCE
from appliance.media.prompts import PromptLibrary
from drivers.base import AcceptLine, Direction, Driver, Line, LineState
from tests.fax.conftest import pixels


class FaxMachineLine(Line):
    """The caller's fax machine, behind Asterisk: it hears what the engine writes."""

    def __init__(self, machine: FaxSession) -> None:
        super().__init__("fax-1", Direction.INBOUND, caller="057187654321", callee="95500")
        self.machine = machine

    def write_frame(self, frame: bytes) -> None:
        self.machine.rx(frame)

    def answer(self) -> None:
        self.state = LineState.ANSWERED

    def hangup(self, cause: str = "normal") -> None:
        self.state = LineState.ENDED


class LateFrames(Driver):
    """One call whose frame of a tick in ``late`` comes only with the next tick's."""

    name = "far-end"
    far_end_clocked = True

    def __init__(self, machine: FaxSession, late: set[int]) -> None:
        self.line = FaxMachineLine(machine)
        self.machine = machine
        self.late = late
        self.held: list[bytes] = []

    async def start(self, accept: AcceptLine) -> None:
        accept(self.line)

    async def stop(self) -> None:
        return None

    def before_tick(self, tick: int) -> None:
        if tick < 1:
            return
        self.held.append(self.machine.tx() or SILENCE)
        if tick not in self.late:
            for frame in self.held:
                self.line.push_frame(frame)
            self.held.clear()


def test_a_fax_whose_frames_are_late_now_and_then_arrives_pixel_for_pixel(
        pages_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    late = {int(t) for t in rng.choice(np.arange(10, 6000), size=60, replace=False)}  # 1 %
    received = tmp_path / "rx.tiff"
    results: list[FaxResult | None] = []

    async def receive(call: Call) -> None:
        await call.answer()
        with FaxSession(calling_party=False, rx_file=received) as session:
            await call.exchange(session)
            results.append(session.result)

    async def main() -> FaxResult | None:
        clock = ManualClock(start=100.0)
        with FaxSession(calling_party=True, tx_file=pages_dir / "summary.tiff") as machine:
            driver = LateFrames(machine, late)
            engine = Engine(clock=clock, drivers=[driver], flow=receive,
                            prompts=PromptLibrary(), recordings=tmp_path / "rec")
            task = asyncio.create_task(engine.run())
            await engine.started.wait()
            while not (results and machine.done) and engine.tick_no < 6000:
                await asyncio.sleep(0)
            engine.stop()
            await task
            assert engine.stats.frames_late >= 10  # the schedule did make frames late
            return machine.result

    sent = asyncio.run(main())
    assert results and results[0] is not None and results[0].pages == 1
    assert sent is not None and sent.ok, sent
    assert np.array_equal(pixels(received)[0], pixels(pages_dir / "summary.tiff")[0])
