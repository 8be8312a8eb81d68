"""The running appliance freezes what start-up built out of the garbage collector's walk
(Engine(freeze_heap=True)), so a full collection no longer stops the tick for tens of
milliseconds; what calls create afterwards is still collected."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from appliance.calls.call import Call
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from drivers.sim import SimExchange


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the test session collects as before


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


async def idle(call: Call) -> None:
    await call.answer()


@pytest.mark.parametrize("freeze", [True, False])
def test_start_up_heap_is_frozen_and_later_cycles_are_still_collected(
        unfrozen: None, freeze: bool) -> None:
    built = Node()
    built.other = built  # a cycle alive at start-up: start-up state

    async def main() -> tuple[int, bool]:
        engine = Engine(clock=ManualClock(), drivers=[SimExchange(trunks=1)], flow=idle,
                        freeze_heap=freeze)
        task = asyncio.create_task(engine.run())
        await engine.started.wait()
        frozen = gc.get_freeze_count()
        later = Node()
        later.other = later  # a cycle a call might leave behind
        gone = weakref.ref(later)
        del later
        gc.collect()
        engine.stop()
        await task
        return frozen, gone() is None

    frozen, collected = asyncio.run(main())
    if freeze:
        assert frozen > 1000  # modules, prompts, the engine itself...
    else:
        assert frozen == 0
    assert collected
    assert built.other is built
