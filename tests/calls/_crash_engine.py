"""An engine process for the crash test: one simulated call, recorded, until it is killed.

Run as ``python -m tests.calls._crash_engine DATA_DIR``. Prints ``RECORDING <line> <frames>``
once the call's stereo recording has been flushed to disk a few times, then keeps the call
going until the test kills the process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from appliance.calls.call import Call
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange


async def flow(call: Call) -> None:
    await call.answer()
    while True:
        await call.play("welcome", interruptible=False)


async def main(root: Path) -> None:
    store = Store(root / "appliance.db")
    exchange = SimExchange()
    engine = Engine(clock=MonotonicClock(), drivers=[exchange], flow=flow,
                    prompts=PromptLibrary(), store=store, recordings=root / "recordings")
    task = asyncio.create_task(engine.run())
    await engine.started.wait()
    bot = CallerBot(exchange, "13800000000")
    await bot.dial("95500")
    speech = concat([engine.prompts.get("welcome", "en")])
    sending = asyncio.create_task(bot.send(speech * 20))
    while not engine.calls or engine.calls[0].recorder is None:
        await asyncio.sleep(0.02)
    recorder = engine.calls[0].recorder
    while recorder.frames_written < 130:  # more than two 50-frame flushes
        await asyncio.sleep(0.02)
    print(f"RECORDING {bot.line.id if bot.line else ''} {recorder.frames_written}", flush=True)
    await asyncio.gather(task, sending)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
