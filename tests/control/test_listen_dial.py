"""Listen-in, whisper and click-to-dial through the control API over real TCP: the requests,
their refusals, and the ``listen`` and ``dial`` events on the stream (which never carry the
dialled number). What each phone hears is tested in ``tests/acd``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from appliance.acd import Acd
from appliance.control import ControlClient, ControlError, ControlServer
from appliance.store.db import Store
from drivers.sim import CallerBot
from tests.acd.helpers import flush, seat_bot, until
from tests.control.test_server import follower, off_loop, run

CUSTOMER = "13912345678"


def test_listen_switch_leave_then_dial_a_customer(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    events: list[dict[str, Any]] = []
    stop = threading.Event()

    async def scenario(acd: Acd, server: ControlServer, engine: Any, exchange: Any) -> None:
        client = ControlClient.for_data(tmp_path)
        thread = follower(client, events, stop)
        assert await until(engine, lambda: bool(server.subscribers))
        agent = seat_bot(exchange, "8001")
        boss = seat_bot(exchange, "8002")
        customer = CallerBot(exchange, CUSTOMER, name="customer")
        exchange.subscribe(CUSTOMER, customer, answer_after=2.0, signal_answer=True)
        await off_loop(client.request, "login", seat="s1", agent="A001")
        caller = CallerBot(exchange, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: agent.connected)

        async def refused(op: str, **fields: Any) -> str:
            with pytest.raises(ControlError) as err:
                await off_loop(client.request, op, **fields)
            return str(err.value)

        assert "field 'mode' must be one of listen, whisper" in await refused(
            "listen", seat="s1", phone="s2", mode="shout", supervisor="boss")
        assert "missing field 'supervisor'" in await refused(
            "listen", seat="s1", phone="s2", mode="listen")
        assert "must be another seat's" in await refused(
            "listen", seat="s1", phone="s1", mode="listen", supervisor="boss")
        assert await refused("listen-stop", monitor="nope") == "no listen-in 'nope' in progress"
        view = await off_loop(client.request, "listen", seat="s1", phone="s2", mode="listen",
                              supervisor="boss")
        key = view["monitor"]
        assert (view["seat"], view["phone"], view["mode"]) == ("s1", "s2", "listen")
        assert await until(engine, lambda: boss.connected)
        (now,) = await off_loop(client.request, "monitors")
        assert (now["monitor"], now["joined"]) == (key, True)
        view = await off_loop(client.request, "listen-mode", monitor=key, mode="whisper")
        assert view["mode"] == "whisper"
        await off_loop(client.request, "listen-stop", monitor=key)
        assert await boss.wait_hangup(3) is not None
        assert agent.connected and caller.connected
        assert await off_loop(client.request, "monitors") == []

        # Click-to-dial, from wrap-up after the agent ends this call.
        assert "seat s1 is talking: dial after the call" in await refused(
            "dial", seat="s1", number=CUSTOMER)
        await off_loop(client.request, "hangup", seat="s1")
        assert await until(engine, lambda: acd.seats["s1"].state.value == "wrap-up")
        assert "field 'language' must be one of zh, yue, en" in await refused(
            "dial", seat="s1", number=CUSTOMER, language="fr")
        result = await off_loop(client.request, "dial", seat="s1", number=CUSTOMER,
                                customer="7")
        assert CUSTOMER not in json.dumps(result)
        assert await until(engine, lambda: customer.connected, 10)
        assert await until(engine, lambda: "s1" in acd._talks, 2)  # bridged: talking
        await customer.hangup()
        assert await until(engine, lambda: acd.seats["s1"].state.value == "wrap-up", 5)
        # The follower reads on its own thread: give it the engine's time to catch up.
        assert await until(engine, lambda: sum(
            1 for e in events if e["event"] == "queue-leave") == 2)
        stop.set()
        await off_loop(thread.join, 5)

    try:
        run(tmp_path, store, scenario)
        flush(store)
        log = store.query("SELECT action, mode, supervisor FROM acd_monitor_log ORDER BY id")
    finally:
        store.close()
    listen = [(e["data"]["action"], e["data"]["mode"]) for e in events
              if e["event"] == "listen"]
    assert listen == [("start", "listen"), ("joined", "listen"), ("mode", "whisper"),
                      ("stop", "whisper")]
    assert [(r["action"], r["mode"]) for r in log] == listen
    dial = [e["data"] for e in events if e["event"] == "dial"]
    assert [d["action"] for d in dial] == ["ringing-seat", "ringing-customer", "answered"]
    assert all(d["seat"] == "s1" and d["customer"] == "7" for d in dial)
    assert CUSTOMER not in json.dumps(dial)
