"""The simulated exchange's phones behave as phones do: an off-hook phone gives busy, a
phone takes call after call, "answer at once" answers, a caller is told why the box
hung up, and a stopped exchange frees its trunks and tells every far end."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from appliance.calls.call import Call, CallEnded
from drivers.base import Direction, LineError
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import SimLine
from tests.calls.conftest import Rig


async def talk_until_ended(call: Call) -> None:
    """Answer an inbound call (an outbound one waits for the far end), then say nothing."""
    with contextlib.suppress(CallEnded):
        if call.line.direction is Direction.INBOUND:
            await call.answer()
        else:
            await call.wait_answered()
        await call.silence(60)


def test_a_phone_already_in_a_call_gives_busy(run_calls: Any) -> None:
    async def scenario(rig: Rig) -> tuple[str, str, int]:
        seat = CallerBot(rig.exchange, "8001")
        rig.exchange.add_seat("8001", seat, answer_after=0.2)
        first = await rig.engine.originate(rig.exchange, "8001", talk_until_ended)
        await first.wait_answered()
        # It answered the second call on the same phone: both calls went live, and the
        # phone heard both, two frames a tick.
        second = await rig.engine.originate(rig.exchange, "8001", talk_until_ended)
        cause = await second.wait_ended()
        heard = len(seat.heard)
        await seat.wait(0.2)
        return cause, second.progress_outcome, (len(seat.heard) - heard) // 320

    cause, outcome, frames = run_calls(scenario, flow=talk_until_ended)
    assert (cause, outcome) == ("busy", "busy")
    assert 10 <= frames <= 11  # one frame a tick over 0.2 s, from the first call alone


def test_a_phone_takes_call_after_call(run_calls: Any) -> None:
    async def scenario(rig: Rig) -> list[bool]:
        seat = CallerBot(rig.exchange, "8001")
        rig.exchange.add_seat("8001", seat, answer_after=0)  # picks up at once
        connected = []
        for _ in range(2):
            call = await rig.engine.originate(rig.exchange, "8001", talk_until_ended)
            await call.wait_answered()
            await seat.wait(0.1)
            # The second time it said "not connected" (the first call's hang-up cause
            # stayed), although audio flowed.
            connected.append(seat.connected)
            await call.hangup()
        return connected

    assert run_calls(scenario, flow=talk_until_ended) == [True, True]


def test_a_caller_the_box_hangs_up_on_before_answering_is_told_why(run_calls: Any) -> None:
    async def refuse(call: Call) -> None:
        await call.sleep(1)
        await call.hangup("busy")

    async def scenario(rig: Rig) -> str:
        bot = CallerBot(rig.exchange, "13800138020")
        with pytest.raises(LineError) as refused:
            await bot.dial("95500")
        return str(refused.value)

    # It said "did not answer within 30 s" after one second.
    assert run_calls(scenario, flow=refuse) == "caller: 95500 hung up before answering (busy)"


def test_a_stopped_exchange_frees_its_trunks_and_tells_the_far_ends(run_calls: Any) -> None:
    async def scenario(rig: Rig) -> tuple[SimExchange, CallerBot, SimLine]:
        bot = CallerBot(rig.exchange, "13800138021")
        await bot.dial("95500")
        assert bot.line is not None
        await rig.exchange.stop()  # without the engine first ending the call
        return rig.exchange, bot, bot.line

    exchange, bot, line = run_calls(scenario, flow=talk_until_ended)
    assert exchange.lines == {}  # the trunk stayed taken
    assert bot.hangup_cause == "shutdown"  # the caller was never told
    assert line.end_cause == "shutdown"


def test_keys_pressed_after_a_call_ended_never_reach_the_next_call(run_calls: Any) -> None:
    keys: list[str] = []

    async def take_keys(call: Call) -> None:
        await call.answer()
        with contextlib.suppress(CallEnded):
            got = await call.collect(8, terminator="#", first_timeout=3.0, inter_timeout=2.0)
            keys.append(got.digits)
            await call.hangup()

    async def scenario(rig: Rig) -> tuple[bool, bool]:
        bot = CallerBot(rig.exchange, "13800000001")
        await bot.dial("95500")
        await bot.press("1")
        await bot.press("#")
        await bot.wait_hangup()
        with pytest.raises(LineError, match="the call ended"):
            await bot.press("999#")  # too late: the box has hung up
        ended_by_box = bot.connected
        await bot.dial("95500")  # the next call; the caller keys nothing
        await bot.wait_hangup()
        await bot.hangup()
        await rig.engine.settle()
        return ended_by_box, bot.connected

    connected_after_box, connected_after_own = run_calls(scenario, flow=take_keys)
    assert keys == ["1", ""]
    assert not connected_after_box and not connected_after_own
