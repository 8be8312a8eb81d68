"""The default insurance IVR with the ACD behind its transfer node: key 0 reaches a seat,
caller and agent hear each other, the call's stereo recording keeps both, and a caller
who has just reported a claim is answered before one who has not."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from appliance.acd import PRIORITY_CLAIM, Acd, AgentState, QueueConfig, Strategy, records
from appliance.calls.call import FlowFn
from appliance.calls.engine import Engine
from appliance.insurance.demo_data import load_demo_data
from appliance.ivr.flow import load_flow
from appliance.ivr.insurance_lookups import InsuranceLookups
from appliance.ivr.interpreter import Step, make_flow_handler
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import audio, flush, run_calls, seat_bot, seats, talking, until, voice
from tests.rig import InlineExecutor
from tests.voicemail.conftest import BEEP, spoken

FLOW = Path(__file__).parents[2] / "appliance" / "ivr" / "default_flow.json"
NOW = dt.datetime(2026, 11, 25, 12, 0)  # a Wednesday at noon: the office is open


def handler(tmp_path: Path, store: Store, acd: Acd, paths: list[list[Step]]) -> FlowFn:
    lookups = InsuranceLookups(store, now=lambda: NOW, executor=InlineExecutor())
    return make_flow_handler(load_flow(FLOW), lookups.functions(), clock_now=lambda: NOW,
                             messages_dir=tmp_path / "messages", store=store,
                             executor=InlineExecutor(), acd=acd,
                             on_done=lambda _call, path: paths.append(path))


def test_key_zero_reaches_a_seat_and_both_sides_hear_each_other(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    load_demo_data(store, policies=50, today=NOW.date(), pin_iterations=1000)
    acd = Acd(seats(2), [QueueConfig("service", Strategy.FEWEST_CALLS)], store=store,
              executor=InlineExecutor())
    paths: list[list[Step]] = []
    caller_says, agent_says = voice("agent-pass.wav"), voice("auth-thankyou.wav", seed=2)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes]:
        s1, s2 = seat_bot(ex, "8001"), seat_bot(ex, "8002")
        acd.login("s1", "A001")
        acd.login("s2", "A002")
        bot = CallerBot(ex, "13800138000")
        await bot.dial("95500")
        await bot.listen(0.5)
        await bot.press("3")  # English
        await bot.listen(0.5)
        await bot.press("0")
        assert await until(engine, talking(acd, "s1", "s2"), 20)
        seat = s1 if talking(acd, "s1")() else s2
        await bot.send(caller_says)
        await seat.send(agent_says)
        await bot.wait(0.5)
        await bot.hangup()
        assert await seat.wait_hangup(5) is not None
        return bytes(bot.heard), bytes(seat.heard)

    try:
        heard_by_caller, heard_by_agent = run_calls(tmp_path, store, acd,
                                                    handler(tmp_path, store, acd, paths),
                                                    scenario)
        flush(store)
        (row,) = store.query("SELECT recording, ivr_path FROM calls WHERE direction = 'in'")
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert audio("en", "to_operator") in heard_by_caller
    assert caller_says in heard_by_agent and agent_says in heard_by_caller
    stereo = read_slin(row["recording"], channels=2).reshape(-1, 2)
    assert caller_says in stereo[:, 0].tobytes() and agent_says in stereo[:, 1].tobytes()
    (path,) = paths
    transfer = next(s for s in path if s.get("node") == "operator")
    assert transfer["queue"] == "service" and transfer["transferred"] is True
    assert transfer["outcome"] == "answered"
    assert any(s.get("node") == "operator" for s in json.loads(row["ivr_path"]))
    assert entry["language"] == "en" and entry["priority"] == 0
    assert entry["outcome"] == "answered" and entry["answered_by"] in ("s1", "s2")


def test_a_caller_who_reported_a_claim_goes_ahead(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    summary = load_demo_data(store, policies=50, today=NOW.date(), pin_iterations=1000)
    policy = next(iter(summary.sample_ids))
    acd = Acd(seats(1), [QueueConfig("service", max_wait=600.0)], store=store,
              executor=InlineExecutor())
    paths: list[list[Step]] = []

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        s1 = seat_bot(ex, "8001")
        plain, claimant = CallerBot(ex, "13800000001"), CallerBot(ex, "13800000002")
        await plain.dial("95500")
        await plain.listen(0.5)
        await plain.press("1")
        await plain.listen(0.5)
        await plain.press("0")
        assert await until(engine, lambda: len(acd.queues["service"].waiting) == 1, 20)
        # The claimant reports a claim (policy number, description after the beep), then
        # asks for a person: they join after the first caller.
        await claimant.dial("95500")
        await claimant.listen(0.5)
        await claimant.press("1")
        await claimant.listen(0.5)
        await claimant.press("3")
        await claimant.listen(0.5)
        await claimant.press(policy + "#")
        assert await claimant.wait_for(BEEP, timeout=30)
        await claimant.send(spoken("agent-pass.wav"))
        assert await claimant.wait_for(audio("zh", "claim_reported")[:3200], timeout=30)
        await claimant.wait(8)  # the case number, then the main menu
        await claimant.press("0")
        assert await until(engine, lambda: len(acd.queues["service"].waiting) == 2, 20)
        acd.login("s1", "A001")
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.TALKING, 10)
        # The seat got the claimant, though the other caller came first.
        assert [e.caller for e in acd.queues["service"].waiting.entries] == [plain.number]
        await claimant.hangup()
        await plain.hangup()
        await s1.wait(0.5)

    try:
        run_calls(tmp_path, store, acd, handler(tmp_path, store, acd, paths), scenario)
        flush(store)
        entries = {e["caller"]: e for e in records.entries(store)}
    finally:
        store.close()
    assert entries["13800000002"]["priority"] == PRIORITY_CLAIM
    assert entries["13800000002"]["outcome"] == "answered"
    assert entries["13800000001"]["priority"] == 0
    assert entries["13800000001"]["outcome"] == "abandoned"


def test_a_flow_naming_a_queue_the_acd_lacks_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    try:
        acd = Acd(seats(1), [QueueConfig("claims")], store=store)
        lookups = InsuranceLookups(store)
        with pytest.raises(ValueError, match="queues the ACD does not have: service"):
            make_flow_handler(load_flow(FLOW), lookups.functions(), store=store,
                              messages_dir=tmp_path, acd=acd)
    finally:
        store.close()
