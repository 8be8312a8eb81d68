"""The test rig's manual clock against the store's writer thread: a write that a flow
awaits takes no simulated time, however slow the machine commits it, and a write that
never ends does not stop the simulated world."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlite_utils import Database

from appliance.calls import clock
from appliance.calls.call import Call
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from tests import rig


async def _idle(call: Call) -> None:
    await call.hangup()


def _slow(seconds: float) -> Callable[[Database], float]:
    def write(db: Database) -> float:
        time.sleep(seconds)  # a loaded machine's commit
        return seconds

    return write


def test_a_slow_write_a_flow_awaits_takes_no_simulated_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")

    async def main() -> tuple[float, float]:
        async with rig.running_engine(_idle, prompts=PromptLibrary(), store=store,
                                      recordings=None) as (engine, _):
            await engine.wait_ticks(None, 1)
            before = engine.clock.now()
            await asyncio.wrap_future(store.submit(_slow(0.5)))
            return before, engine.clock.now()

    try:
        before, after = asyncio.run(main())
    finally:
        store.close()
    # Half a second of idle ticks would be hundreds of them; the commit costs two (the one
    # that waited for it, and the one the flow resumes in).
    assert after - before <= 0.1


def test_a_write_that_does_not_end_is_given_up_on(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "WRITE_HOLD_S", 0.2)
    store = Store(tmp_path / "appliance.db")

    async def main() -> bool:
        async with rig.running_engine(_idle, prompts=PromptLibrary(), store=store,
                                      recordings=None) as (engine, _):
            stuck = store.submit(_slow(1.0))
            await engine.wait_ticks(None, 100)  # two simulated seconds
            return stuck.done()

    try:
        assert asyncio.run(main()) is False  # the clock went on while the write ran
    finally:
        store.close()
