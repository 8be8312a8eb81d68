"""The real engine on the manual clock with a simulated exchange, for tests of whole calls.

Every call test needs the same few steps (start the engine and its drivers, wait until it
ticks, stop it and wait for every call's clean-up); this context manager is the one place
that does them. Crash tests share :func:`killed_after_report`, and code that
runs store work on an executor is given :class:`InlineExecutor`. With a store, the clock
waits for its writes (:class:`WritesTakeNoTime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from appliance.calls.call import Call, FlowFn
from appliance.calls.clock import InlineExecutor, ManualClock, WritesTakeNoTime
from appliance.calls.engine import Engine
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from drivers.sim import SimExchange

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@contextlib.asynccontextmanager
async def running_engine(
    flow: FlowFn, *, prompts: PromptLibrary, store: Store | None, recordings: Path | None,
    trunks: int = 8, after_recover: Sequence[Callable[[list[Path]], None]] = (),
    on_event: Callable[[str, Call, dict[str, Any]], None] | None = None,
) -> AsyncIterator[tuple[Engine, SimExchange]]:
    """An engine with one simulated exchange, running until the block ends. Work handed
    to the loop's default executor runs inline (see :class:`InlineExecutor`)."""
    asyncio.get_running_loop().set_default_executor(InlineExecutor())
    exchange = SimExchange(trunks=trunks)
    clock = ManualClock(hold=None if store is None else WritesTakeNoTime(store))
    engine = Engine(clock=clock, drivers=[exchange], flow=flow, prompts=prompts,
                    store=store, recordings=recordings, after_recover=after_recover,
                    on_event=on_event)
    task = asyncio.create_task(engine.run())
    await engine.started.wait()
    try:
        yield engine, exchange
    finally:
        engine.stop()
        await task


def killed_after_report(module: str, root: Path) -> list[str]:
    """Run ``python -m module root`` (an engine process), wait for the first line it
    prints, SIGKILL it, and return that line's words: the process reports what it has
    on disk, then dies without any clean-up, as a crash would."""
    proc = subprocess.Popen([sys.executable, "-m", module, str(root)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        return proc.stdout.readline().split()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


class DiskFills:
    """A recording's file on a disk with ``room`` bytes left: a short write, then ENOSPC."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if self.room <= 0:
            raise OSError(28, "No space left on device")
        n = int(self.real.write(bytes(data[: self.room])))
        self.room -= n
        return n

    def fileno(self) -> int:
        return int(self.real.fileno())

    def close(self) -> None:
        self.real.close()
