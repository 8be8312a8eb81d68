"""Click-to-dial on the manual clock: the agent's seat phone rings first; the customer's
phone is rung only once the agent answered (who hears ringback meanwhile); then both hear
each other, the call is recorded and counted as the seat's, and a dial that does not reach
the customer puts the seat back as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.acd import AcdError, AgentState, QueueConfig, control, records
from appliance.acd.dial import dials
from appliance.calls.engine import Engine
from appliance.media.progress import detect_progress
from appliance.media.wavio import read_slin
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import flush, open_acd, queue_flow, run_calls, seat_bot, until, voice

CUSTOMER = "13912345678"


def lines_to(ex: SimExchange, number: str) -> int:
    return sum(1 for line in ex.lines.values() if line.callee == number)


def test_the_seat_rings_first_then_the_customer_and_they_talk(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 2, QueueConfig("service", wrap_up=2.0))
    flow = queue_flow(acd, "service", {})
    agent_says, customer_says = voice("auth-thankyou.wav", seed=2), voice("agent-pass.wav")

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes, bool, str]:
        agent = seat_bot(ex, "8001", answer_after=2.0)
        customer = CallerBot(ex, CUSTOMER, name="customer")
        ex.subscribe(CUSTOMER, customer, answer_after=6.0, signal_answer=True)
        with pytest.raises(AcdError, match="logged out"):
            control.dial(acd, "s1", CUSTOMER)
        acd.login("s1", "A001")
        with pytest.raises(AcdError, match="number"):
            control.dial(acd, "s1", "12ab")
        result = control.dial(acd, "s1", CUSTOMER, customer="42")
        assert CUSTOMER not in str(result)
        assert acd.seats["s1"].state is AgentState.RINGING
        # While the agent's phone rings, the customer is not called.
        rung_early = False
        while not agent.connected:
            rung_early |= lines_to(ex, CUSTOMER) > 0
            await engine.wait_ticks(None, 1)
        assert await until(engine, lambda: lines_to(ex, CUSTOMER) == 1, 1)
        assert await until(engine, lambda: customer.connected, 8)
        waiting = bytes(agent.heard)
        await customer.send(customer_says)
        await agent.send(agent_says)
        await customer.wait(0.5)
        assert acd.seats["s1"].state is AgentState.TALKING
        await customer.hangup()
        assert await agent.wait_hangup(5) is not None
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.WRAP_UP, 1)
        flush(store)
        return (bytes(agent.heard[len(waiting):]), bytes(customer.heard), rung_early,
                _progress(waiting))

    try:
        agent_heard, customer_heard, rung_early, waiting_tone = run_calls(
            tmp_path, store, acd, flow, scenario)
        (dial,) = dials(store)
        (entry,) = records.entries(store)
        (out,) = store.query("SELECT * FROM calls WHERE callee = ?", [CUSTOMER])
    finally:
        store.close()
    assert not rung_early
    assert waiting_tone == "ringback"  # the agent heard ringback while the customer rang
    assert customer_says in agent_heard and agent_says in customer_heard
    assert dial["seat_id"] == "s1" and dial["agent"] == "A001" and dial["customer"] == "42"
    assert dial["outcome"] == "answered" and dial["call_id"] == out["call_id"]
    assert entry["outcome"] == "dialled" and entry["answered_by"] == "s1"
    assert entry["hung_up_first"] == "caller" and entry["rings"] >= 1
    assert out["direction"] == "out" and out["answered_at"] is not None
    stereo = read_slin(out["recording"], channels=2).reshape(-1, 2)
    assert customer_says in stereo[:, 0].tobytes() and agent_says in stereo[:, 1].tobytes()


def _progress(heard: bytes) -> str:
    return detect_progress(np.frombuffer(heard, "<i2").copy()).value


def test_a_customer_who_does_not_answer_puts_the_seat_back_as_it_was(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service"))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        agent = seat_bot(ex, "8001", answer_after=1.0)
        ex.subscribe(CUSTOMER, None, behaviour=Behaviour.BUSY)
        acd.login("s1", "A001")
        acd.set_state("s1", AgentState.NOT_READY, "after-call-work")
        control.dial(acd, "s1", CUSTOMER)
        assert await until(engine, lambda: agent.connected, 3)
        assert await agent.wait_hangup(40) is not None
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.NOT_READY, 1)
        flush(store)

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        (dial,) = dials(store)
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert dial["outcome"] == "no-answer"
    assert entry["outcome"] == "dial-failed"
    assert acd.seats["s1"].reason == "after-call-work"
