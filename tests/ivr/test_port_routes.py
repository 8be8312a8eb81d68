"""Inbound routes by port, heard by simulated callers on the manual clock: a trunk routed to
a queue reaches a seat with no IVR greeting, one routed to another flow hears that flow, a
route whose target is gone gets the default flow (and a warning naming port and target),
a route to a number is handled as a call to that number, and a change of route reaches the
next call without a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from appliance.acd import Acd, QueueConfig
from appliance.box.ports import Port
from appliance.box.settings import delete_port, save_port
from appliance.calls.call import Call, FlowFn
from appliance.calls.engine import Engine
from appliance.ivr.flow import Flow
from appliance.ivr.interpreter import make_flow_handler
from appliance.ivr.port_routes import PortRoutes
from appliance.ivr.versions import PublishedFlow, publish, save_draft
from appliance.media.prompts import PromptLibrary, concat
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import flush, seat_bot, seats, until
from tests.rig import InlineExecutor, running_engine

LIB = PromptLibrary()
WELCOME = concat([LIB.get("welcome")])  # the default flow's greeting
GOODBYE = concat([LIB.get("goodbye")])  # the other flow's


def doc(name: str, greeting: str) -> dict[str, Any]:
    return {"name": name, "version": 1, "languages": ["zh"], "start": "hello",
            "nodes": {"hello": {"type": "play", "prompts": [greeting], "next": "bye"},
                      "bye": {"type": "hangup"}}}


def put_flow(store: Store, name: str, greeting: str) -> None:
    publish(store, name, save_draft(store, doc(name, greeting), by="admin", now=1.0),
            by="admin", now=1.0)


def route(store: Store, channel: int, kind: str, target: str = "") -> None:
    """The admin's route for trunk ``channel`` (written as the lines page writes it; the
    page checks targets when saving, but a flow or queue can go away afterwards)."""
    delete_port(store, channel)
    save_port(store, Port(channel, "fxo", "fxs_ks", "none", kind, target), old_channel=None,
              by="admin")


class Box:
    """A store with two published flows (``line``: the default, greets ``welcome``;
    ``other``: greets ``goodbye``), an ACD with one seat and the ``service`` queue, and
    the engine's flow as the box builds it: port routes in front of the default."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(tmp_path / "appliance.db")
        put_flow(self.store, "line", "welcome")
        put_flow(self.store, "other", "goodbye")
        self.acd = Acd(seats(1), [QueueConfig("service")], store=self.store,
                       executor=InlineExecutor())

        def make_handler(flow: Flow) -> FlowFn:
            return make_flow_handler(flow, {}, store=self.store, acd=self.acd,
                                     executor=InlineExecutor())

        ivr = PublishedFlow(self.store, "line", make_handler)
        self.flow = PortRoutes(self.store, ivr, make_handler, acd=self.acd)

    def run(self, scenario: Any) -> Any:
        async def main() -> Any:
            async with running_engine(self.flow, prompts=LIB, store=self.store,
                                      recordings=None) as (engine, exchange):
                self.acd.bind(engine)
                result = await asyncio.wait_for(scenario(engine, exchange), timeout=60)
                await engine.settle()
                return result

        try:
            return asyncio.run(main())
        finally:
            flush(self.store)


async def one_call(exchange: SimExchange, seconds: float = 4.0) -> tuple[bytes, int]:
    """A caller on the first free trunk: what they heard, and the trunk it rode."""
    bot = CallerBot(exchange, "13800138000")
    await bot.dial("95500")
    trunk = bot.line.port if bot.line is not None else None
    await bot.wait_hangup(seconds)
    if bot.connected:
        await bot.hangup()
    assert trunk is not None
    return bytes(bot.heard), trunk


def test_a_trunk_routed_to_a_queue_reaches_a_seat_without_the_ivr(tmp_path: Path) -> None:
    box = Box(tmp_path)
    route(box.store, 1, "queue", "service")

    async def scenario(engine: Engine, exchange: SimExchange) -> tuple[bytes, bool]:
        seat = seat_bot(exchange, "8001")
        box.acd.login("s1", "A001")
        bot = CallerBot(exchange, "13800138000")
        await bot.dial("95500")
        reached = await until(engine, lambda: seat.connected, 20)
        await bot.wait(1)
        await bot.hangup()
        return bytes(bot.heard), reached

    try:
        heard, reached = box.run(scenario)
        (entry,) = box.store.query("SELECT queue, outcome, answered_by FROM acd_entries")
        (call,) = box.store.query("SELECT line FROM calls WHERE direction = 'in'")
    finally:
        box.store.close()
    assert reached
    assert WELCOME not in heard and GOODBYE not in heard
    assert (entry["queue"], entry["outcome"], entry["answered_by"]) == (
        "service", "answered", "s1")
    assert call["line"]


def test_a_port_routed_to_another_flow_hears_that_flow(tmp_path: Path) -> None:
    box = Box(tmp_path)
    route(box.store, 1, "flow", "other")
    try:
        heard, trunk = box.run(lambda engine, exchange: one_call(exchange))
    finally:
        box.store.close()
    assert trunk == 1
    assert GOODBYE in heard and WELCOME not in heard


@pytest.mark.parametrize(("kind", "target"), [("flow", "deleted-flow"),
                                              ("queue", "removed-queue")])
def test_a_route_whose_target_is_gone_gets_the_default_flow(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, target: str) -> None:
    box = Box(tmp_path)
    route(box.store, 1, kind, target)
    try:
        with caplog.at_level(logging.WARNING, logger="appliance.ivr.port_routes"):
            heard, _ = box.run(lambda engine, exchange: one_call(exchange))
    finally:
        box.store.close()
    assert WELCOME in heard and GOODBYE not in heard
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "port 1" in warning and target in warning and "default flow" in warning


def test_a_change_of_route_applies_to_the_next_call(tmp_path: Path) -> None:
    box = Box(tmp_path)

    async def scenario(engine: Engine, exchange: SimExchange) -> list[bytes]:
        heard = []
        for kind, target in (("none", ""), ("flow", "other"), ("number", "95500")):
            route(box.store, 1, kind, target)  # saved while the engine runs
            got, trunk = await one_call(exchange)
            assert trunk == 1
            heard.append(got)
        return heard

    try:
        default, routed, by_number = box.run(scenario)
    finally:
        box.store.close()
    assert WELCOME in default and GOODBYE not in default
    assert GOODBYE in routed and WELCOME not in routed
    assert WELCOME in by_number and GOODBYE not in by_number


def test_a_route_to_a_number_is_handled_as_a_call_to_that_number(tmp_path: Path) -> None:
    """An analog trunk brings no called number: routed to the conference number, say, its
    callers reach what that number reaches."""
    box = Box(tmp_path)
    dialled: list[str] = []
    by_number = box.flow.default

    async def numbers(call: Call) -> None:
        dialled.append(call.callee)
        await by_number(call)

    box.flow.default = numbers
    route(box.store, 1, "number", "95599")
    try:
        heard, _ = box.run(lambda engine, exchange: one_call(exchange))
        (row,) = box.store.query("SELECT callee FROM calls")
    finally:
        box.store.close()
    assert dialled == ["95599"] and WELCOME in heard
    assert row["callee"] == "95500"  # the record keeps what the caller dialled


def test_only_the_calls_on_the_routed_port_follow_it(tmp_path: Path) -> None:
    box = Box(tmp_path)
    route(box.store, 2, "flow", "other")

    async def scenario(engine: Engine, exchange: SimExchange) -> dict[int, bytes]:
        first, second = CallerBot(exchange, "13800000001"), CallerBot(exchange, "13800000002")
        await first.dial("95500")  # trunk 1
        await second.dial("95500")  # trunk 2, while trunk 1 is taken
        await first.wait_hangup(4)
        await second.wait_hangup(4)
        return {bot.line.port or 0: bytes(bot.heard) for bot in (first, second)
                if bot.line is not None}

    try:
        heard = box.run(scenario)
    finally:
        box.store.close()
    assert WELCOME in heard[1] and GOODBYE not in heard[1]
    assert GOODBYE in heard[2] and WELCOME not in heard[2]
