"""Hold and transfers through the control API over real TCP (manual clock, simulated
exchange): the agent puts the caller on hold and back (the caller hears the music, the
stream tells the console), a hold past the reminder time sends ``hold-reminder``, a blind
transfer to the other seat reaches it and the target can wrap the call up, and refusals
name what was wrong."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from appliance.acd import Acd, AgentState
from appliance.acd.hold import hold_tune
from appliance.control import ControlClient, ControlError, ControlServer
from appliance.store.db import Store
from drivers.sim import CallerBot
from tests.acd.helpers import flush, seat_bot, until, voice
from tests.control.test_server import follower, off_loop, run


def test_hold_and_unhold_through_the_api_with_events_and_the_reminder(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    stop = threading.Event()
    held_for: list[float] = []

    async def scenario(acd: Acd, server: ControlServer, engine: Any, exchange: Any) -> bytes:
        acd.hold_remind_after = 5.0
        client = ControlClient.for_data(tmp_path)
        thread = follower(client, events, stop)
        assert await until(engine, lambda: bool(server.subscribers))
        s1 = seat_bot(exchange, "8001")
        await off_loop(client.request, "login", seat="s1", agent="A001")
        caller = CallerBot(exchange, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s1.connected, 10)
        with pytest.raises(ControlError, match="not on hold"):
            await off_loop(client.request, "unhold", seat="s1")
        assert await off_loop(client.request, "hold", seat="s1") == {"seat": "s1", "hold": 1}
        with pytest.raises(ControlError, match="already on hold"):
            await off_loop(client.request, "hold", seat="s1")
        s1_view, _ = await off_loop(client.request, "seats")
        assert (s1_view["state"], s1_view["held"], s1_view["consult"]) == ("talking", True, None)
        await caller.wait(12)
        mark = len(s1.heard)
        held = await off_loop(client.request, "unhold", seat="s1")
        # At least the 12 s waited; the requests themselves cross threads in real time while
        # the manual clock runs on, so the upper bound is loose.
        assert held["seat"] == "s1" and 12 <= held["seconds"] < 30
        held_for.append(held["seconds"])
        said = voice("agent-pass.wav", seed=21)
        await caller.send(said)
        await caller.wait(0.5)
        assert said in bytes(s1.heard[mark:])
        await caller.hangup()
        assert await until(engine, lambda: any(e["event"] == "call-ended" for e in events))
        stop.set()
        await off_loop(thread.join, 5)
        return bytes(caller.heard)

    heard = run(tmp_path, None, scenario)
    assert b"".join(hold_tune().frames[:50]) in heard
    kinds = [e["event"] for e in events if e["event"] in ("hold", "hold-reminder", "unhold")]
    # A reminder each 5 s on hold (two or more: the hold lasted at least 12 s).
    assert kinds == ["hold"] + ["hold-reminder"] * int(held_for[0] // 5) + ["unhold"]
    reminder = next(e["data"] for e in events if e["event"] == "hold-reminder")
    assert reminder["seat"] == "s1" and reminder["held_seconds"] == pytest.approx(5.0, abs=0.1)


def test_a_blind_transfer_through_the_api_reaches_the_other_seat(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    events: list[dict[str, Any]] = []
    stop = threading.Event()

    async def scenario(acd: Acd, server: ControlServer, engine: Any, exchange: Any) -> None:
        client = ControlClient.for_data(tmp_path)
        thread = follower(client, events, stop)
        assert await until(engine, lambda: bool(server.subscribers))
        s1, s2 = seat_bot(exchange, "8001"), seat_bot(exchange, "8002", answer_after=2.0)
        await off_loop(client.request, "login", seat="s1", agent="A001")
        caller = CallerBot(exchange, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s1.connected, 10)
        await off_loop(client.request, "login", seat="s2", agent="A002")
        with pytest.raises(ControlError, match="field 'to' must be one of seat, queue, number"):
            await off_loop(client.request, "transfer", seat="s1", to="desk", target="s2")
        with pytest.raises(ControlError, match="no consult in progress"):
            await off_loop(client.request, "consult-complete", seat="s1")
        view = await off_loop(client.request, "transfer", seat="s1", to="seat", target="s2")
        assert (view["mode"], view["target"], view["step"]) == ("blind", "s2", "started")
        assert await until(engine, lambda: s2.connected, 10)
        assert acd.seats["s1"].state is AgentState.WRAP_UP
        assert acd.seats["s2"].state is AgentState.TALKING
        said = voice("auth-thankyou.wav", seed=22)
        await caller.send(said)
        await caller.wait(0.5)
        assert said in bytes(s2.heard)
        # Both agents can wrap the call up: each answered it.
        call = view["call"]
        for seat in ("s1", "s2"):
            await off_loop(client.request, "wrap-up", seat=seat, call=call, code="claim")
        await caller.hangup()
        stop.set()
        await off_loop(thread.join, 5)

    try:
        run(tmp_path, store, scenario)
        flush(store)
        wrapups = store.query("SELECT seat_id FROM call_wrapups")
        (row,) = store.query("SELECT kind, target, outcome FROM acd_transfers")
    finally:
        store.close()
    steps = [e["data"]["step"] for e in events if e["event"] == "transfer"]
    assert steps == ["started", "answered"]
    offers = [(e["data"]["seats"], e["data"]["policy"]) for e in events
              if e["event"] == "offer"]
    # The target seat gets its screen pop too, with the policy keyed in the IVR.
    assert offers == [(["s1"], "880001234567"), (["s2"], "880001234567")]
    assert row == {"kind": "blind", "target": "s2", "outcome": "answered"}
    assert len(wrapups) == 1  # one row a call: the last agent's code
