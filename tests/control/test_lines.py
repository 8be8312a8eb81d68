"""The control API's ``lines`` op over real TCP against a running engine with the simulated
exchange: a call in progress shows "in call" on its trunk, a call not yet answered
"ringing", a trunk marked down "alarm" (and the call on it dropped); outbound calls never
take a trunk in alarm or one reserved for inbound."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from appliance.acd import Acd, QueueConfig
from appliance.calls.call import Call
from appliance.control import ControlClient, ControlError, ControlServer
from appliance.control.protocol import read_address
from drivers.base import LineError
from drivers.sim import CallerBot
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import LIB, seats, until
from tests.control.test_server import off_loop
from tests.rig import running_engine

TALKER, RINGER = "13800000001", "13800000002"


async def flow(call: Call) -> None:
    if call.caller == RINGER:
        await call.sleep(30)  # rings half a minute before the box answers
    await call.answer()
    await call.wait_ended()


async def dial_out(call: Call) -> None:
    await call.wait_answered()


def states(lines: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return [(r["port"], r["state"], r["reserved_inbound"]) for r in lines]


def test_each_trunk_with_its_state_and_outbound_calls_avoid_alarm_and_reserved(
        tmp_path: Path) -> None:
    acd = Acd(seats(1), [QueueConfig("service")], store=None)
    server = ControlServer(acd, tmp_path)

    async def main() -> None:
        async with running_engine(flow, prompts=LIB, store=None, recordings=None,
                                  trunks=4) as (engine, exchange):
            acd.bind(engine)
            await server.start()
            try:
                host, port, token = read_address(tmp_path)  # type: ignore[misc]
                client = ControlClient(host, port, token)
                with pytest.raises(ControlError, match="field 'ports' must be a list of port"
                                                       " numbers as strings, got \\[4\\]"):
                    await off_loop(client.request, "reserve-inbound", ports=[4])
                lines = await off_loop(client.request, "reserve-inbound", ports=["4"])
                assert exchange.reserved_inbound == {4} and lines[3]["reserved_inbound"]
                exchange.subscribe("66001234", None, behaviour=Behaviour.NO_ANSWER)
                talker = CallerBot(exchange, TALKER)
                await talker.dial("95500")
                ringer = CallerBot(exchange, RINGER)
                ringing = asyncio.ensure_future(ringer.dial("95500", timeout=60))
                await until(engine, lambda: len(exchange.lines) == 2)
                exchange.trunk_down(3, "red alarm")
                lines = await off_loop(client.request, "lines")
                assert states(lines) == [("1", "in-call", False), ("2", "ringing", False),
                                         ("3", "alarm", False), ("4", "idle", True)]
                assert {r["driver"] for r in lines} == {"sim"}
                assert lines[2]["detail"] == "red alarm"
                assert lines[0]["direction"] == "in" and lines[0]["call"]

                # Trunks 1-2 busy, 3 down, 4 inbound only: no line for an outbound call.
                with pytest.raises(LineError, match="1 in alarm, 1 reserved for inbound"):
                    await engine.originate(exchange, "66001234", dial_out)
                # An inbound call may still take the reserved trunk.
                third = CallerBot(exchange, "13800000003")
                await third.dial("95500")
                lines = await off_loop(client.request, "lines")
                assert states(lines)[3] == ("4", "in-call", True)
                await third.hangup()

                # The trunk comes back: the outbound call takes it, and rings there.
                exchange.trunk_up(3)
                out = await engine.originate(exchange, "66001234", dial_out)
                await until(engine, lambda: not out.ended and out.line.state.value == "dialing")
                lines = await off_loop(client.request, "lines")
                assert states(lines)[2] == ("3", "ringing", False)
                assert lines[2]["direction"] == "out"

                # A trunk that goes down mid-call drops the call on it.
                exchange.trunk_down(1)
                await until(engine, lambda: talker.hangup_cause is not None)
                assert talker.hangup_cause == "line-dropped"
                lines = await off_loop(client.request, "lines")
                assert states(lines)[0] == ("1", "alarm", False)
                await ringing
                assert states(await off_loop(client.request, "lines"))[1] == (
                    "2", "in-call", False)
                await ringer.hangup()
                await out.hangup()
            finally:
                await server.close()

    asyncio.run(asyncio.wait_for(main(), 60))
