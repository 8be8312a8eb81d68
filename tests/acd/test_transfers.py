"""Transfers end to end on the simulated exchange and the manual clock: blind to a seat, a
queue and an outside number, blind with no answer (back to the front of the queue),
consult then complete or return, the target hanging up during a consult, and the 3-way
conference where each party sends its own tone and the other two must hear it. What each
person heard is checked in the audio their phone received and in the caller's recording,
which runs on across the transfer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.acd import PRIORITY_CLAIM, Acd, AgentState, QueueConfig, control, records
from appliance.acd import transfer as transfers
from appliance.acd.hold import hold_tune
from appliance.calls.call import Call
from appliance.calls.engine import Engine
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import (
    audio,
    flush,
    queue_flow,
    run_calls,
    seat_bot,
    seats,
    talking,
    unanswered_seat,
    until,
    voice,
)
from tests.rig import InlineExecutor

OUTSIDE = "02088880000"


def open_two_queues(tmp_path: Path, **kw: Any) -> tuple[Store, Acd]:
    """Three seats; ``service`` is s1's queue, ``claims`` s2's and s3's."""
    store = Store(tmp_path / "appliance.db")
    acd = Acd(seats(3), [QueueConfig("service", members={"s1": 0}, **kw),
                         QueueConfig("claims", members={"s2": 0, "s3": 0}, **kw)],
              store=store, executor=InlineExecutor(), messages_dir=tmp_path / "messages")
    return store, acd


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return np.round(np.sin(2 * np.pi * hz * t) * 6000).astype(np.int16)


def level(heard: bytes, hz: float) -> float:
    """How strong ``hz`` is in ``heard``, against the whole spectrum (0..1)."""
    x = np.frombuffer(heard, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    band = spectrum[np.abs(freqs - hz) < 15].sum()
    return float(band / max(spectrum.sum(), 1e-9))


def stereo(store: Store, caller: str) -> tuple[bytes, bytes]:
    (row,) = store.query("SELECT recording FROM calls WHERE direction = 'in' AND caller = ?",
                         [caller])
    pcm = read_slin(row["recording"], channels=2).reshape(-1, 2)
    return pcm[:, 0].tobytes(), pcm[:, 1].tobytes()


async def says_then_hangs_up(caller: CallerBot, listener: CallerBot, said: bytes) -> bytes:
    """The caller says ``said`` and hangs up; what ``listener`` heard meanwhile."""
    mark = len(listener.heard)
    await caller.send(said)
    await caller.wait(0.5)
    await caller.hangup()
    return bytes(listener.heard[mark:])


def run_one_transfer(tmp_path: Path, store: Store, acd: Acd, flow: Any,
                     scenario: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``scenario``; its result and the one transfer it made, as the store has it."""
    try:
        result = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
    finally:
        store.close()
    return result, row


async def answered_at_s1(engine: Engine, ex: SimExchange, acd: Acd,
                         number: str = "13800138000") -> tuple[CallerBot, CallerBot]:
    s1 = seat_bot(ex, "8001")
    acd.login("s1", "A001")
    caller = CallerBot(ex, number)
    await caller.dial("95500")
    assert await until(engine, talking(acd, "s1"), 10)
    return caller, s1


def test_blind_transfer_to_a_seat_releases_the_agent_and_the_caller_talks_to_the_target(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path, wrap_up=20.0)
    flow = queue_flow(acd, "service", {"95500": "zh"})
    before, after, target_says = voice("agent-pass.wav"), voice("agent-pass.wav", seed=5), \
        voice("auth-thankyou.wav", seed=2)
    first_says = voice("auth-thankyou.wav", seed=7)
    events: list[dict[str, Any]] = []
    acd.subscribe(lambda kind, data: events.append(data) if kind == "transfer" else None)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes, bytes]:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        s2 = seat_bot(ex, "8002", answer_after=3.0)
        acd.login("s2", "A002")
        await s1.send(first_says)
        await caller.send(before)
        mark = len(caller.heard)
        view = control.blind_transfer(acd, "s1", "seat", "s2")
        assert (view["mode"], view["to"], view["target"]) == ("blind", "seat", "s2")
        # The agent is released at once; the caller hears the prompt while s2 rings.
        assert await s1.wait_hangup(2) is not None
        assert acd.seats["s1"].state is AgentState.WRAP_UP
        assert acd.seats["s2"].state is AgentState.RINGING
        assert await until(engine, lambda: s2.connected, 5)
        assert acd.seats["s2"].state is AgentState.TALKING
        assert audio("zh", "transfer_please_hold")[:16000] in bytes(caller.heard[mark:])
        await caller.send(after)
        await s2.send(target_says)
        await caller.wait(0.5)
        # The target can hang up in turn: the caller is surveyed after s2 leaves.
        await s2.hangup()
        assert await caller.wait_for(audio("zh", "survey_rate")[:3200], timeout=10)
        await caller.hangup()
        return bytes(caller.heard), bytes(s1.heard), bytes(s2.heard)

    try:
        heard, s1_heard, s2_heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        left, right = stereo(store, "13800138000")
        entries = records.entries(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
    finally:
        store.close()
    assert before in s1_heard and after not in s1_heard
    assert after in s2_heard and before not in s2_heard
    assert target_says in heard and first_says in heard
    # One recording of the caller's call, across the transfer: both agents in it.
    assert first_says in right and target_says in right and before in left and after in left
    assert [(e["answered_by"], e["agent"], e["hung_up_first"]) for e in entries] == [
        ("s1", "A001", "agent"), ("s2", "A002", "agent")]
    assert (row["kind"], row["target_kind"], row["target"], row["outcome"]) == (
        "blind", "seat", "s2", "answered")
    assert row["answered_before_agent_left"] == 0 and row["to_entry"] == entries[1]["key"]
    assert [e["step"] for e in events] == ["started", "answered"]


def test_blind_transfer_to_a_queue_reaches_a_seat_of_that_queue(tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path)
    flow = queue_flow(acd, "service", {"95501": "en"})
    said = voice("agent-pass.wav", seed=3)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes]:
        caller, _ = await answered_at_s1(engine, ex, acd)
        s3 = seat_bot(ex, "8003")
        acd.login("s3", "A003")
        control.blind_transfer(acd, "s1", "queue", "claims")
        assert await until(engine, talking(acd, "s3"), 15)
        await caller.send(said)
        await caller.wait(0.5)
        await caller.hangup()
        return bytes(caller.heard), bytes(s3.heard)

    try:
        heard, s3_heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        entries = records.entries(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
    finally:
        store.close()
    assert audio("zh", "transfer_please_hold") in heard and said in s3_heard
    assert [(e["queue"], e["answered_by"]) for e in entries] == [("service", "s1"),
                                                                ("claims", "s3")]
    assert (row["target_kind"], row["target"], row["outcome"]) == ("queue", "claims",
                                                                   "completed")


def test_blind_transfer_to_an_outside_number_dials_it_on_a_trunk(tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path)
    flow = queue_flow(acd, "service", {})
    caller_says, outside_says = voice("agent-pass.wav", seed=4), voice("auth-thankyou.wav", 8)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes, str]:
        caller, _ = await answered_at_s1(engine, ex, acd)
        outside = CallerBot(ex, OUTSIDE, name="outside")
        ex.subscribe(OUTSIDE, outside, answer_after=4.0, signal_answer=True)
        control.blind_transfer(acd, "s1", "number", OUTSIDE)
        assert await until(engine, lambda: outside.connected, 10)
        await caller.wait(0.2)  # the engine bridges them on the answer
        await caller.send(caller_says)
        await outside.send(outside_says)
        await caller.wait(0.5)
        await outside.hangup()
        cause = await caller.wait_hangup(5)
        return bytes(caller.heard), bytes(outside.heard), str(cause)

    try:
        heard, outside_heard, cause = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
        legs = store.query("SELECT callee, caller FROM calls WHERE direction = 'out'")
    finally:
        store.close()
    assert caller_says in outside_heard and outside_says in heard
    # While the number rang: the prompt, then the music.
    assert b"".join(hold_tune().frames[:25]) in heard
    assert cause  # the outside party hung up: the box let the caller go
    assert {"callee": OUTSIDE, "caller": "13800138000"} in legs
    assert (row["target_kind"], row["outcome"], row["answered_before_agent_left"]) == (
        "number", "answered", 0)


def test_blind_transfer_nobody_answers_puts_the_caller_back_at_the_front(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path, ring_timeout=4.0, wrap_up=8.0)
    back_says = voice("agent-pass.wav", seed=6)

    async def flow(call: Call) -> None:
        await call.answer()
        await acd.transfer(call, "service", priority=PRIORITY_CLAIM)  # both just reported

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[list[tuple[str, int]], bytes]:
        first, s1 = await answered_at_s1(engine, ex, acd, "13900000001")
        unanswered_seat(ex, "8002")
        acd.login("s2", "A002")
        second = CallerBot(ex, "13900000002")
        await second.dial("95500")  # waits behind: s1 is busy
        await second.wait(1.0)
        control.blind_transfer(acd, "s1", "seat", "s2")
        assert await until(engine, lambda: len(acd.queues["service"].waiting) == 2, 8)
        order = [(e.caller, e.priority) for e in acd.queues["service"].waiting]
        # s2 let it ring out: paused, as for a queue's offer.
        assert acd.seats["s2"].state is AgentState.NOT_READY
        assert acd.seats["s2"].reason == "no-answer"
        # When s1's wrap-up ends, the transferred caller is answered before the other.
        old = s1.line
        assert await until(engine, lambda: s1.line is not old and s1.line is not None
                           and s1.line.connected, 10)
        mark = len(s1.heard)
        await first.send(back_says)
        await first.wait(0.5)
        heard = bytes(s1.heard[mark:])
        await first.hangup()
        await second.hangup()
        return order, heard

    try:
        order, s1_heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
        entries = records.entries(store)
    finally:
        store.close()
    # Back ahead of the caller who was waiting already, with the claim priority kept.
    assert order == [("13900000001", PRIORITY_CLAIM), ("13900000002", PRIORITY_CLAIM)]
    assert back_says in s1_heard
    assert (row["outcome"], row["answered_at"]) == ("no-answer", None)
    first_entries = [e for e in entries if e["caller"] == "13900000001"]
    assert [e["answered_by"] for e in first_entries] == ["s1", "s1"]


def test_consult_then_complete_the_caller_waits_on_hold_and_then_talks_to_the_target(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path, wrap_up=20.0)
    flow = queue_flow(acd, "service", {"95502": "yue"})
    aside, held, later, target_says = (voice("agent-pass.wav", seed=9),
                                       voice("auth-thankyou.wav", seed=10),
                                       voice("agent-pass.wav", seed=11),
                                       voice("auth-thankyou.wav", seed=12))

    async def scenario(engine: Engine, ex: SimExchange) -> dict[str, bytes]:
        s1 = seat_bot(ex, "8001")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95502")
        assert await until(engine, lambda: s1.connected, 10)
        s2 = seat_bot(ex, "8002", answer_after=2.0)
        acd.login("s2", "A002")
        control.consult(acd, "s1", "seat", "s2")
        assert await caller.wait_for(audio("yue", "hold_please"), timeout=5)
        assert await until(engine, lambda: s2.connected, 5)
        await s1.send(aside)  # the agent briefs the target: the caller must not hear it
        await caller.send(held)  # nor may the agent or the target hear the held caller
        await s1.wait(0.5)
        with pytest.raises(Exception, match="consult is in progress"):
            control.unhold(acd, "s1")
        view = control.consult_complete(acd, "s1")
        assert view["step"] == "completed"
        assert await s1.wait_hangup(2) is not None
        assert acd.seats["s1"].state is AgentState.WRAP_UP
        await caller.send(later)
        await s2.send(target_says)
        await caller.wait(0.5)
        await caller.hangup()
        assert await s2.wait_hangup(5) is not None
        return {"caller": bytes(caller.heard), "s1": bytes(s1.heard), "s2": bytes(s2.heard)}

    try:
        heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
        entries = records.entries(store)
        (hold,) = records.holds(store, entries[0]["key"])
    finally:
        store.close()
    assert aside in heard["s2"] and aside not in heard["caller"]
    assert held not in heard["s1"] and held not in heard["s2"]
    assert later in heard["s2"] and target_says in heard["caller"]
    assert b"".join(hold_tune().frames[:25]) in heard["caller"]
    assert (row["kind"], row["outcome"], row["answered_before_agent_left"]) == (
        "consult", "completed", 1)
    assert hold["seconds"] > 2.0 and entries[0]["hold_count"] == 1
    assert [e["answered_by"] for e in entries] == ["s1", "s2"]


def test_consult_return_gives_the_caller_back(tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path)
    flow = queue_flow(acd, "service", {})
    back = voice("agent-pass.wav", seed=13)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, str | None]:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        outside = CallerBot(ex, OUTSIDE, name="outside")
        ex.subscribe(OUTSIDE, outside, answer_after=2.0, signal_answer=True)
        control.consult(acd, "s1", "number", OUTSIDE)
        assert await until(engine, lambda: outside.connected, 5)
        await control.consult_return(acd, "s1")
        cause = await outside.wait_hangup(2)
        mark = len(s1.heard)
        await caller.send(back)
        await caller.wait(0.5)
        assert acd.seats["s1"].state is AgentState.TALKING
        await caller.hangup()
        return bytes(s1.heard[mark:]), cause

    (s1_heard, cause), row = run_one_transfer(tmp_path, store, acd, flow, scenario)
    assert cause is not None and back in s1_heard
    assert (row["kind"], row["outcome"], row["agent_left_at"]) == ("consult", "returned", None)


def test_a_consult_nobody_answers_gives_the_agent_the_caller_back(tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path, ring_timeout=3.0)
    flow = queue_flow(acd, "service", {})
    back = voice("auth-thankyou.wav", seed=18)

    async def scenario(engine: Engine, ex: SimExchange) -> bytes:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        ex.subscribe(OUTSIDE, None, behaviour=Behaviour.NO_ANSWER)
        control.consult(acd, "s1", "number", OUTSIDE)
        assert control.call_state(acd, "s1") == {"held": True, "consult": "ringing"}
        assert await until(engine, lambda: transfers.of(acd).step("s1") is None, 5)
        assert control.call_state(acd, "s1") == {"held": False, "consult": None}
        return await says_then_hangs_up(caller, s1, back)

    s1_heard, row = run_one_transfer(tmp_path, store, acd, flow, scenario)
    assert back in s1_heard
    assert (row["outcome"], row["answered_at"]) == ("no-answer", None)


def test_the_target_hanging_up_during_a_consult_gives_the_agent_the_caller_back(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path, wrap_up=2.0)
    flow = queue_flow(acd, "service", {})
    back = voice("auth-thankyou.wav", seed=14)

    async def scenario(engine: Engine, ex: SimExchange) -> bytes:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        s2 = seat_bot(ex, "8002", answer_after=1.0)
        acd.login("s2", "A002")
        control.consult(acd, "s1", "seat", "s2")
        assert await until(engine, lambda: s2.connected, 5)
        await s2.wait(1.0)
        await s2.hangup()
        assert await until(engine, lambda: not transfers.of(acd).consulting("s1"), 2)
        assert acd.seats["s2"].state is AgentState.WRAP_UP
        return await says_then_hangs_up(caller, s1, back)

    s1_heard, row = run_one_transfer(tmp_path, store, acd, flow, scenario)
    assert back in s1_heard
    assert (row["outcome"], row["answered_before_agent_left"]) == ("target-hung-up", None)


def test_three_way_conference_everyone_hears_the_other_two_and_survives_the_agent_leaving(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path)
    flow = queue_flow(acd, "service", {})
    freqs = {"caller": 620.0, "agent": 1180.0, "target": 1730.0}
    after = voice("agent-pass.wav", seed=15)

    async def scenario(engine: Engine, ex: SimExchange) -> dict[str, bytes]:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        s2 = seat_bot(ex, "8002", answer_after=1.0)
        acd.login("s2", "A002")
        control.consult(acd, "s1", "seat", "s2")
        assert await until(engine, lambda: s2.connected, 5)
        assert await until(engine, lambda: transfers.of(acd).step("s1") == "answered", 2)
        control.conference(acd, "s1")
        await caller.wait(0.2)
        marks = {"caller": len(caller.heard), "agent": len(s1.heard), "target": len(s2.heard)}
        bots = {"caller": caller, "agent": s1, "target": s2}
        for who, bot in bots.items():
            engine.loop.create_task(bot.send(tone(freqs[who])))
        await caller.wait(1.5)
        heard = {who: bytes(bot.heard[marks[who]:marks[who] + 16000])
                 for who, bot in bots.items()}
        # The agent leaves: caller and target talk on.
        await s1.hangup()
        await caller.wait(1.0)
        assert s2.connected and caller.connected
        mark = len(s2.heard)
        await caller.send(after)
        await caller.wait(0.5)
        heard["after"] = bytes(s2.heard[mark:])
        await caller.hangup()
        return heard

    heard, row = run_one_transfer(tmp_path, store, acd, flow, scenario)
    for who in ("caller", "agent", "target"):
        others = [w for w in freqs if w != who]
        for other in others:
            assert level(heard[who], freqs[other]) > 0.1, (who, other)
        assert level(heard[who], freqs[who]) < 0.01, who  # nobody hears themselves
    assert after in heard["after"]
    assert (row["kind"], row["outcome"], row["answered_before_agent_left"]) == (
        "conference", "completed", 1)


def test_in_a_conference_the_agent_and_target_talk_on_when_the_caller_leaves(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path)
    flow = queue_flow(acd, "service", {})
    said = voice("agent-pass.wav", seed=16)

    async def scenario(engine: Engine, ex: SimExchange) -> bytes:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        outside = CallerBot(ex, OUTSIDE, name="outside")
        ex.subscribe(OUTSIDE, outside, answer_after=1.0, signal_answer=True)
        control.consult(acd, "s1", "number", OUTSIDE)
        assert await until(engine, lambda: outside.connected, 5)
        assert await until(engine, lambda: transfers.of(acd).step("s1") == "answered", 2)
        control.conference(acd, "s1")
        await caller.wait(1.0)
        await caller.hangup()
        await s1.wait(1.0)
        assert s1.connected and outside.connected
        assert acd.seats["s1"].state is AgentState.TALKING
        mark = len(outside.heard)
        await s1.send(said)
        await s1.wait(0.5)
        await s1.hangup()
        assert await outside.wait_hangup(2) is not None
        return bytes(outside.heard[mark:])

    try:
        heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (row,) = store.query("SELECT * FROM acd_transfers")
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert said in heard
    assert (row["kind"], row["outcome"]) == ("conference", "caller-hung-up")
    assert entry["hung_up_first"] == "caller"


def test_in_a_conference_the_caller_and_agent_talk_on_when_the_target_leaves(
        tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path, wrap_up=3.0)
    flow = queue_flow(acd, "service", {})
    said = voice("auth-thankyou.wav", seed=17)

    async def scenario(engine: Engine, ex: SimExchange) -> bytes:
        caller, s1 = await answered_at_s1(engine, ex, acd)
        s2 = seat_bot(ex, "8002", answer_after=1.0)
        acd.login("s2", "A002")
        control.consult(acd, "s1", "seat", "s2")
        assert await until(engine, lambda: transfers.of(acd).step("s1") == "answered", 5)
        control.conference(acd, "s1")
        assert control.call_state(acd, "s1") == {"held": False, "consult": "conference"}
        await caller.wait(1.0)
        await s2.hangup()
        assert await until(engine, lambda: transfers.of(acd).step("s1") is None, 2)
        assert acd.seats["s2"].state is AgentState.WRAP_UP
        assert acd.seats["s1"].state is AgentState.TALKING and caller.connected
        return await says_then_hangs_up(caller, s1, said)

    heard, row = run_one_transfer(tmp_path, store, acd, flow, scenario)
    assert said in heard
    assert (row["kind"], row["outcome"]) == ("conference", "target-hung-up")


def test_transfers_refused_say_why(tmp_path: Path) -> None:
    store, acd = open_two_queues(tmp_path)
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        caller, _ = await answered_at_s1(engine, ex, acd)
        for args, why in ((("s2", "seat", "s3"), "not in a conversation"),
                          (("s1", "seat", "s1"), "agent's own seat"),
                          (("s1", "seat", "s2"), "s2 is logged-out: a transfer needs a ready"),
                          (("s1", "queue", "sales"), "no queue 'sales'"),
                          (("s1", "number", "12ab"), "expected 3 to 20 digits"),
                          (("s1", "desk", "1"), "goes to one of seat, queue, number")):
            with pytest.raises(Exception, match=why):
                control.blind_transfer(acd, *args)
        with pytest.raises(Exception, match="goes to one of seat, number"):
            control.consult(acd, "s1", "queue", "claims")
        with pytest.raises(Exception, match="no consult in progress"):
            control.conference(acd, "s1")
        assert acd.seats["s1"].state is AgentState.TALKING and caller.connected
        await caller.hangup()

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        assert store.query("SELECT * FROM acd_transfers") == []
    finally:
        store.close()
