"""Call.exchange: raw frames to a processor each tick, both ways, until it says done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from appliance.calls.call import Call, CallEnded
from appliance.media.frame import SILENCE
from drivers.sim import CallerBot
from tests.calls.conftest import Rig


class Echo:
    """Sends back each frame it got, shifted by one tick, for ``frames`` ticks."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.got: list[bytes] = []

    def rx(self, frame: bytes) -> None:
        self.got.append(frame)

    def tx(self) -> bytes | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return self.got[-1] if self.got else SILENCE


def test_exchange_hands_every_frame_over_and_ends_when_the_processor_does(
        run_calls: Callable[..., Any]) -> None:
    echo = Echo(50)
    after: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        await call.exchange(echo)
        after.append("done")
        await call.silence(0.5)
        await call.hangup()

    async def scenario(rig: Rig) -> bytes:
        bot = CallerBot(rig.exchange)
        await bot.dial("95500")
        ramp = np.arange(160 * 60, dtype=np.int16)
        await bot.send(ramp)
        await bot.wait_hangup()
        return bytes(bot.heard)

    heard = run_calls(scenario, flow)
    assert after == ["done"]
    assert len(echo.got) >= 50 and all(len(f) == 320 for f in echo.got)
    sent = np.frombuffer(b"".join(echo.got), dtype="<i2")
    # What the processor got is the caller's ramp, frame for frame, in order.
    ramp = sent[sent != 0]
    assert len(ramp) > 160 * 40 and np.all(np.diff(ramp.astype(np.int32)) == 1)
    # What it sent back (all but the frame it got on its last tick) is what the caller heard.
    echoed = b"".join(f for f in echo.got[:-1] if any(f))
    assert len(echoed) > 320 * 40 and echoed in heard


def test_exchange_raises_call_ended_when_the_caller_hangs_up(
        run_calls: Callable[..., Any]) -> None:
    ended: list[str] = []

    async def flow(call: Call) -> None:
        await call.answer()
        try:
            await call.exchange(Echo(10_000))
        except CallEnded as exc:
            ended.append(exc.cause)
            raise

    async def scenario(rig: Rig) -> None:
        bot = CallerBot(rig.exchange)
        await bot.dial("95500")
        await bot.wait(1.0)
        await bot.hangup()
        await rig.engine.settle()

    run_calls(scenario, flow)
    assert ended == ["remote"]
