"""An engine process for the voicemail crash test: one caller leaving a long message, until
the test kills the process with SIGKILL.

Run as ``python -m tests.voicemail._crash_engine DATA_DIR``. Prints ``RECORDING <call id>
<frames>`` once the message has been flushed to disk a few times, then lets the caller go
on talking.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

from appliance.calls.call import Call
from appliance.calls.clock import MonotonicClock
from appliance.calls.engine import Engine
from appliance.media.prompts import PromptLibrary
from appliance.store.db import Store
from appliance.voicemail import general_box, leave_message, recovery_hook
from drivers.sim import CallerBot, SimExchange
from tests.voicemail.conftest import BEEP, seed_salespeople, spoken


async def main(root: Path) -> None:
    store = Store(root / "appliance.db")
    seed_salespeople(store)
    box = general_box(store)

    async def flow(call: Call) -> None:
        await call.answer()
        await leave_message(call, box, "zh", store, policy_number="880009990001",
                            play_greeting=False)

    exchange = SimExchange()
    engine = Engine(clock=MonotonicClock(), drivers=[exchange], flow=flow,
                    prompts=PromptLibrary(), store=store, recordings=root / "recordings",
                    after_recover=[recovery_hook(store, engine_folder=root / "recordings")])
    task = asyncio.create_task(engine.run())
    await engine.started.wait()
    bot = CallerBot(exchange, "13700001111")
    await bot.dial("95500")
    assert await bot.wait_for(BEEP, timeout=10)
    said = np.concatenate([spoken("vm-intro.wav", seed=s) for s in range(4)])
    sending = asyncio.create_task(bot.send(said))
    call = engine.calls[0]
    while call.message is None or call.message.recorder.frames_written < 130:
        await asyncio.sleep(0.02)
    print(f"RECORDING {call.id} {call.message.recorder.frames_written}", flush=True)
    await asyncio.gather(task, sending)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
