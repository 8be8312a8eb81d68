"""ACD calls end to end on the simulated exchange and the manual clock: callers queue and
hear where they are in their own language, seats are rung in turn, answered calls are
bridged so both sides hear each other, and the recording keeps both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.acd import (
    Acd,
    AgentState,
    Overflow,
    QueueConfig,
    SeatConfig,
    Strategy,
    control,
    records,
)
from appliance.acd.hold import hold_tune
from appliance.calls.engine import Engine
from appliance.ivr.speech import say
from appliance.media.wavio import read_slin
from appliance.store.db import Store
from appliance.voicemail import box_messages, queue_box
from drivers.sim import CallerBot, SimExchange
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import (
    audio,
    flush,
    open_acd,
    queue_flow,
    run_calls,
    seat_bot,
    unanswered_seat,
    until,
    voice,
)
from tests.voicemail.conftest import BEEP


def test_answered_call_is_bridged_both_ways_and_recorded_in_stereo(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 2, QueueConfig("service", Strategy.LONGEST_IDLE, wrap_up=3.0))
    flow = queue_flow(acd, "service", {"95500": "zh"})
    caller_says, agent_says = voice("agent-pass.wav"), voice("auth-thankyou.wav", seed=2)

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


def test_callers_hear_their_place_and_wait_in_their_own_language(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", Strategy.ROUND_ROBIN,
                                                   announce_every=4.0, periodic_every=2,
                                                   handle_seconds=180.0))
    flow = queue_flow(acd, "service", {"95500": "zh", "95501": "en"})

    def place(lang: str, position: int, minutes: int) -> bytes:
        return audio(lang, "queue_position", *say(lang, "number", str(position)),
                     "queue_position_end", "queue_wait", *say(lang, "number", str(minutes)),
                     "queue_wait_end")

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes, bytes]:
        s1 = seat_bot(ex, "8001")
        zh, en = CallerBot(ex, "13800000001"), CallerBot(ex, "13800000002")
        await zh.dial("95500")
        await en.dial("95501")
        # No agent is logged in: both wait through two announcements and the music.
        await en.wait(18)
        assert not s1.connected
        mark = len(en.heard)
        acd.login("s1", "A001")
        assert await until(engine, lambda: s1.connected, 5)
        assert zh.connected and acd.seats["s1"].state is AgentState.TALKING
        # The first caller is answered; the second moves up to first in line.
        await en.wait(9)
        heard_after = bytes(en.heard[mark:])
        await zh.hangup()
        await en.hangup()
        return bytes(zh.heard), bytes(en.heard[:mark]), heard_after

    try:
        zh_heard, en_heard, en_after = run_calls(tmp_path, store, acd, flow, scenario)
    finally:
        store.close()
    # 180 s of handle time each, no agent staffed yet: 3 and 6 minutes expected.
    assert place("zh", 1, 3) in zh_heard and place("en", 2, 6) in en_heard
    assert audio("zh", "queue_thanks") in zh_heard and audio("en", "queue_thanks") in en_heard
    assert audio("zh", "queue_position") not in en_heard
    assert audio("en", "queue_position") not in zh_heard
    tune = b"".join(hold_tune().frames[:100])
    assert tune in zh_heard and tune in en_heard
    # Now one agent is staffed and the English caller is next: 1 × 180 s = 3 minutes.
    assert place("en", 1, 3) in en_after


def test_a_seat_that_does_not_answer_is_paused_and_the_next_one_rings(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 2,
                          QueueConfig("service", Strategy.ROUND_ROBIN, ring_timeout=4.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        unanswered_seat(ex, "8001")
        s2 = seat_bot(ex, "8002")
        acd.login("s1", "A001")
        acd.login("s2", "A002")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s2.connected, 10)
        assert acd.seats["s1"].state is AgentState.NOT_READY
        assert acd.seats["s1"].reason == "no-answer"
        await caller.hangup()
        await caller.wait(0.5)

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        s1 = [(r["state"], r["reason"], r["at"]) for r in records.state_log(store, "s1")]
        s2 = [(r["state"], r["reason"], r["at"]) for r in records.state_log(store, "s2")]
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert [(s, r) for s, r, _ in s1] == [("ready", ""), ("ringing", "service"),
                                          ("not-ready", "no-answer")]
    assert [s for s, _, _ in s2][:3] == ["ready", "ringing", "talking"]
    # s1 rang for the ring timeout, then s2 was rung at once.
    assert s1[2][2] - s1[1][2] == pytest.approx(4.0, abs=0.05)
    assert s2[1][2] == pytest.approx(s1[2][2], abs=0.05)
    assert entry["answered_by"] == "s2" and entry["offers"] == 2


def test_after_the_maximum_wait_the_caller_leaves_a_message_in_the_queue_box(
        tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", max_wait=6.0, announce_every=3.0))
    flow = queue_flow(acd, "service", {"95501": "en"})
    said = voice("agent-pass.wav")

    async def scenario(engine: Engine, ex: SimExchange) -> float:
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95501")
        assert await caller.wait_for(audio("en", "vm_greeting_queue")[:3200], timeout=10)
        heard_at = len(caller.heard) / 16000
        assert await caller.wait_for(BEEP, timeout=15)
        await caller.send(said)
        # The message ends 3 s after the last word; then the box hangs up.
        assert await caller.wait_hangup(15) is not None
        return heard_at

    try:
        greeted_at = run_calls(tmp_path, store, acd, flow, scenario)
        (entry,) = records.entries(store)
        box = queue_box(store, "service")
        (message,) = box_messages(store, box)
    finally:
        store.close()
    assert entry["outcome"] == "voicemail" and entry["waited_seconds"] == pytest.approx(6.0,
                                                                                        abs=0.1)
    # The greeting came at the maximum wait (plus the greeting itself), not before.
    assert greeted_at >= 6.0
    assert message.caller == "13800138000" and message.lang == "en"
    assert message.speech_seconds is not None and message.speech_seconds > 0.5


def test_a_booked_callback_keeps_its_place_and_is_placed_when_a_seat_is_free(
        tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", max_wait=5.0, announce_every=3.0,
                                                   overflow=Overflow.CALLBACK))
    flow = queue_flow(acd, "service", {"95501": "en"})
    a_says = voice("agent-pass.wav")

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes]:
        s1 = seat_bot(ex, "8001")
        a, b = CallerBot(ex, "13900000001", "a"), CallerBot(ex, "13900000002", "b")
        # A's phone can be called back: it answers after 2 s.
        ex.subscribe(a.number, a, answer_after=2.0, signal_answer=True)
        await a.dial("95501")
        assert await a.wait_for(audio("en", "queue_callback_offer")[:3200], timeout=10)
        await a.press("1")
        # A hears their own number read back, then the box hangs up: the place is kept.
        assert await a.wait_hangup(30) is not None
        a_first_call = bytes(a.heard)
        first_line = a.line
        await b.dial("95501")
        await b.wait(1.0)
        (view,) = control.queue_states(acd)
        assert [(w.caller, w.callback_number) for w in view.waiting] == [
            (a.number, a.number), (b.number, None)]
        acd.login("s1", "A001")
        # The seat is given A's callback first (A came first), though B is on the line.
        assert await until(engine, lambda: s1.connected, 5)
        # (A's bot keeps the hang-up cause of its first call, so look at its new line.)
        assert await until(engine, lambda: a.line is not first_line and a.line is not None
                           and a.line.connected, 10)
        await a.wait(8)  # the intro, then the agent
        assert audio("en", "queue_callback_intro") in bytes(a.heard[len(a_first_call):])
        await a.send(a_says)
        await a.wait(0.5)
        # B still waits, now first in line.
        assert [(w.caller, w.position) for w in control.queue_states(acd)[0].waiting] == [
            (b.number, 1)]
        await a.hangup()
        await b.hangup()
        return a_first_call, bytes(s1.heard)

    try:
        first_call, s1_heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        entries = {e["caller"]: e for e in records.entries(store)}
        (callback,) = records.callbacks(store)
    finally:
        store.close()
    assert audio("en", "queue_callback_number", *say("en", "digits", "13900000001"),
                 "queue_callback_booked") in first_call
    assert a_says in s1_heard
    a_entry = entries["13900000001"]
    assert a_entry["outcome"] == "callback-answered" and a_entry["answered_by"] == "s1"
    assert entries["13900000002"]["outcome"] == "abandoned"
    assert callback["number"] == "13900000001" and callback["outcome"] == "answered"
    assert callback["seat_id"] == "s1" and callback["placed_at"] > callback["requested_at"]


def test_ring_all_gives_the_call_to_the_first_seat_that_answers(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 3, QueueConfig("service", Strategy.RING_ALL, ring_timeout=10.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        unanswered_seat(ex, "8001")
        s2, s3 = seat_bot(ex, "8002", answer_after=2.0), seat_bot(ex, "8003", answer_after=3.0)
        for seat in ("s1", "s2", "s3"):
            acd.login(seat, f"A-{seat}")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: acd.seats["s2"].state is AgentState.TALKING, 5)
        await caller.wait(2.0)
        # The others stopped ringing when s2 answered, and are free for the next caller:
        # nobody is paused for a call someone else took.
        assert not s3.connected
        assert [acd.seats[s].state for s in ("s1", "s3")] == [AgentState.READY] * 2
        await caller.hangup()
        assert await s2.wait_hangup(5) is not None

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        s3_log = [r["state"] for r in records.state_log(store, "s3")]
    finally:
        store.close()
    assert s3_log == ["ready", "ringing", "ready"]


def test_a_caller_who_hangs_up_while_a_seat_rings_frees_the_seat(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", ring_timeout=20.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        unanswered_seat(ex, "8001")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.RINGING, 5)
        await caller.wait(3.0)
        await caller.hangup()
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.READY, 1)
        assert len(acd.queues["service"].waiting) == 0
        # The seat's phone stopped ringing: its line is gone from the exchange.
        assert not [line for line in ex.lines.values() if line.callee == "8001"]

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert entry["outcome"] == "abandoned" and entry["answered_by"] is None
    assert entry["waited_seconds"] == pytest.approx(3.0, abs=0.2) and entry["offers"] == 1


def test_a_callback_that_finds_the_customer_busy_frees_the_seat(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1,
                          QueueConfig("service", max_wait=3.0, overflow=Overflow.CALLBACK))
    flow = queue_flow(acd, "service", {"95501": "en"})

    async def scenario(engine: Engine, ex: SimExchange) -> bytes:
        s1 = seat_bot(ex, "8001")
        a = CallerBot(ex, "13900000001", "a")
        ex.subscribe(a.number, None, behaviour=Behaviour.BUSY)
        await a.dial("95501")
        assert await a.wait_for(audio("en", "queue_callback_offer")[:3200], timeout=10)
        asked = asyncio.ensure_future(a.wait_for(audio("en", "queue_callback_enter")[:3200],
                                                 timeout=10))
        await asyncio.sleep(0)  # listening before the key, so the prompt's start is not missed
        await a.press("2")
        assert await asked
        await a.press("02088880000#")
        assert await a.wait_hangup(30) is not None
        heard = bytes(a.heard)
        ex.subscribe("02088880000", None, behaviour=Behaviour.BUSY)
        acd.login("s1", "A001")
        assert await until(engine, lambda: s1.connected, 5)
        # The agent hears ringback while the box dials; busy ends the attempt.
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.READY, 40)
        assert len(acd.queues["service"].waiting) == 0
        await s1.wait(1.0)
        assert s1.heard_tone() == "ringback"
        return heard

    try:
        heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
        (callback,) = records.callbacks(store)
    finally:
        store.close()
    assert audio("en", "queue_callback_number", *say("en", "digits", "02088880000")) in heard
    assert entry["outcome"] == "callback-failed"
    assert callback["number"] == "02088880000" and callback["outcome"] == "no-answer"


def test_callers_reach_a_seat_that_speaks_their_language(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    acd = Acd([SeatConfig("zh1", "8001", skills={"zh": 1, "yue": 1}),
               SeatConfig("en1", "8002", skills={"en": 1})],
              [QueueConfig("service", Strategy.LONGEST_IDLE, language_skill=True)],
              store=store)
    flow = queue_flow(acd, "service", {"95500": "zh", "95501": "en"})

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bool, bool]:
        zh_seat, en_seat = seat_bot(ex, "8001"), seat_bot(ex, "8002")
        acd.login("zh1", "A001")  # idle longest: longest idle alone would pick it
        acd.login("en1", "A002")
        caller = CallerBot(ex, "13800000003")
        await caller.dial("95501")
        assert await until(engine, lambda: en_seat.connected, 10)
        got = (en_seat.connected, zh_seat.connected)
        await caller.hangup()
        await caller.wait(0.5)
        return got

    try:
        assert run_calls(tmp_path, store, acd, flow, scenario) == (True, False)
    finally:
        store.close()


def test_a_wrap_up_cut_short_by_the_box_stopping_leaves_the_seat_as_it_was(
        tmp_path: Path) -> None:
    # The wrap-up's timer is cancelled when the box stops: the seat was not made ready
    # (nor its state written to a store that may already be closed).
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", wrap_up=30.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        agent = seat_bot(ex, "8001")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800000001")
        await caller.dial("95500")
        assert await until(engine, lambda: agent.connected, 10)
        await caller.hangup()
        assert await until(engine, lambda: acd.seats["s1"].state is AgentState.WRAP_UP, 5)

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        states = [r["state"] for r in store.query(
            "SELECT state FROM acd_agent_states WHERE seat_id = 's1' ORDER BY id")]
    finally:
        store.close()
    assert states[-1] == "wrap-up" and acd.seats["s1"].state is AgentState.WRAP_UP


@pytest.mark.parametrize(("hang_up", "outcome"), [(False, "shutdown"), (True, "abandoned")])
def test_a_caller_waiting_when_the_engine_stops_is_not_counted_abandoned(
        tmp_path: Path, hang_up: bool, outcome: str) -> None:
    # The end of the call woke the queue's deadline a moment before the call's end was
    # seen: the caller went to overflow and was closed as abandoned, inflating the
    # abandon rate with every stop of the engine.
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", max_wait=60.0))
    flow = queue_flow(acd, "service", {})

    async def scenario(engine: Engine, ex: SimExchange) -> None:
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        await caller.wait(2.0)
        if hang_up:
            await caller.hangup()
            await caller.wait(0.5)

    try:
        run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert entry["outcome"] == outcome
