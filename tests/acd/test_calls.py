"""ACD calls end to end on the simulated exchange and the manual clock: callers queue and
hear where they are in their own language, seats are rung in turn, answered calls are
bridged so both sides hear each other, and the recording keeps both."""

from __future__ import annotations

from pathlib import Path

from appliance.acd import AgentState, QueueConfig, Strategy, records
from appliance.calls.engine import Engine
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import (
    flush,
    make_acd,
    queue_flow,
    run_calls,
    seat_bot,
    seats,
    until,
    voice,
)


def test_answered_call_is_bridged_both_ways_and_recorded_in_stereo(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    acd = make_acd(tmp_path, store, seats(2),
                   QueueConfig("service", Strategy.LONGEST_IDLE, wrap_up=3.0))
    flow = queue_flow(acd, "service", {"95500": "zh"})
    caller_says, agent_says = voice(1), voice(2)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes, list[str]]:
        s1 = seat_bot(ex, "8001")
        seat_bot(ex, "8002")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s1.connected, 10)
        assert acd.seats["s1"].state is AgentState.TALKING
        await caller.send(caller_says)
        await s1.send(agent_says)
        await caller.wait(0.5)
        await caller.hangup()
        assert await s1.wait_hangup(5) is not None
        # Wrap-up after the call, then ready again on its own.
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.WRAP_UP, 1)
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.READY, 3.5)
        flush(store)
        states = [row["state"] for row in records.state_log(store, "s1")]
        return bytes(caller.heard), bytes(s1.heard), states

    try:
        heard_by_caller, heard_by_agent, states = run_calls(tmp_path, store, acd, flow,
                                                            scenario)
        assert caller_says in heard_by_agent
        assert agent_says in heard_by_caller
        assert states == ["ready", "ringing", "talking", "wrap-up", "ready"]
        (row,) = store.query("SELECT recording FROM calls WHERE direction = 'in'")
        stereo = read_slin(row["recording"], channels=2).reshape(-1, 2)
        left, right = stereo[:, 0].tobytes(), stereo[:, 1].tobytes()
        # Left the caller, right what the caller heard: the agent.
        assert caller_says in left and agent_says in right
        assert agent_says not in left and caller_says not in right
        (entry,) = records.entries(store)
        assert entry["outcome"] == "answered" and entry["answered_by"] == "s1"
        assert entry["talk_seconds"] > 1.0
    finally:
        store.close()
