"""The real engine on the manual clock with a simulated exchange, for tests of whole calls.

Every call test needs the same few steps (start the engine and its drivers, wait until it
ticks, stop it and wait for every call's clean-up); this context manager is the one place
that does them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from appliance.calls.call import FlowFn
from appliance.calls.clock import ManualClock
from appliance.calls.engine import Engine
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from drivers.sim import SimExchange


@contextlib.asynccontextmanager
async def running_engine(
    flow: FlowFn, *, prompts: PromptLibrary, store: Store | None, recordings: Path | None,
    trunks: int = 8,
) -> AsyncIterator[tuple[Engine, SimExchange]]:
    """An engine with one simulated exchange, running until the block ends."""
    exchange = SimExchange(trunks=trunks)
    engine = Engine(clock=ManualClock(), drivers=[exchange], flow=flow, prompts=prompts,
                    store=store, recordings=recordings)
    task = asyncio.create_task(engine.run())
    await engine.started.wait()
    try:
        yield engine, exchange
    finally:
        engine.stop()
        await task
