"""``appliance bench transport``: what AudioSocket itself costs, with no engine behind it.

The same load process as ``bench engine`` (speech and DTMF over real AudioSocket TCP on
loopback, on the other core) talks to the real :class:`AudioSocketDriver` on this core,
but each 20 ms tick only drains every line's inbound frames and writes each line one
frame of silence: no DSP, no flows, no recording, no store. Its CPU per channel-frame is
the floor under ``bench engine``'s figure on this machine (kernel TCP in both directions,
the event loop's wake-ups, the driver's Python); ``bench engine`` minus this is the
engine's own share. The ticks are paced like the engine's (start + n x 20 ms).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from appliance.bench.engine import cpu_seconds, pin_core, start_load
from appliance.calls.engine import TICK
from appliance.media.frame import SILENCE
from appliance.runtime import run_loop
from drivers.asterisk.audiosocket import AudioSocketDriver
from drivers.base import Line


def run_transport_bench(*, channels: int, seconds: float, warmup: float, engine_core: int,
                        load_core: int, lead_ms: float = 6.0) -> dict[str, Any]:
    pin_core(engine_core)
    return run_loop(lambda: _bench(channels, seconds, warmup, load_core, lead_ms))


async def _bench(channels: int, seconds: float, warmup: float, load_core: int,
                 lead_ms: float) -> dict[str, Any]:
    lines: list[Line] = []

    def accept(line: Line) -> None:
        line.answer()
        lines.append(line)

    driver = AudioSocketDriver("127.0.0.1", 0)
    await driver.start(accept)
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    frames = 0
    stop = False

    async def tick() -> None:
        nonlocal frames
        n = 0
        while not stop:
            n += 1
            delay = start + n * TICK - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for line in lines:
                inbound = line.inbound
                frames += len(inbound)
                inbound.clear()
                line.write_frame(SILENCE)

    ticker = asyncio.create_task(tick())
    try:
        load = await start_load(driver.port, channels, seconds, warmup, start, lead_ms,
                                load_core)
        frames0, (user0, sys0), wall0 = frames, cpu_seconds(), loop.time()
        await asyncio.sleep(seconds)
        frames1, (user1, sys1), wall1 = frames, cpu_seconds(), loop.time()
        active = sum(not line.ended for line in lines)
    finally:
        stop = True
        await ticker
        await driver.stop()
    await load.communicate()
    per_frame = 1e6 / (channels * (wall1 - wall0) / TICK)
    user, system = user1 - user0, sys1 - sys0
    return {
        "channels": channels,
        "active_calls": active,
        "seconds": seconds,
        "frames_in_per_channel_second": round((frames1 - frames0) / channels
                                              / (wall1 - wall0), 2),
        "cpu_us_per_channel_frame": round((user + system) * per_frame, 2),
        "cpu_user_us_per_channel_frame": round(user * per_frame, 2),
        "cpu_sys_us_per_channel_frame": round(system * per_frame, 2),
        "core_pct": round(100 * (user + system) / (wall1 - wall0), 1),
        "lead_ms": lead_ms,
        "loop": type(loop).__module__.split(".")[0],
    }
