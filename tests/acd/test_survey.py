"""The satisfaction survey and the etiquette facts of answered calls, end to end on the
simulated exchange and the manual clock: the agent hangs up first and the caller is asked
for a score in their own language; the caller hangs up first and is asked nothing; rings
before the answer, holds with their length and reminders, and who hung up first are
stored per call and summed per agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.acd import QueueConfig, control, etiquette, records
from appliance.acd.hold import hold_tune
from appliance.acd.survey import rings
from appliance.calls.engine import Engine
from drivers.sim import CallerBot, SimExchange
from tests.acd.helpers import audio, flush, open_acd, queue_flow, run_calls, seat_bot, until, voice


def test_rings_follow_chinas_five_second_cadence() -> None:
    assert [rings(s) for s in (0.0, 1.0, 4.99, 5.0, 9.9, 14.99, 15.0)] == [1, 1, 1, 2, 2, 3, 4]
    with pytest.raises(ValueError, match="-1"):
        rings(-1)


def test_agent_hangs_up_first_caller_rates_in_their_language(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", wrap_up=1.0))
    flow = queue_flow(acd, "service", {"95500": "zh", "95501": "en"})
    events: list[tuple[str, dict[str, Any]]] = []
    acd.subscribe(lambda kind, data: events.append((kind, data)))

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, str | None]:
        s1 = seat_bot(ex, "8001", answer_after=6.0)  # the seat rings twice
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95501")
        assert await until(engine, lambda: s1.connected, 15)
        await s1.send(voice("auth-thankyou.wav"))
        await s1.hangup()
        # Not dropped: the caller hears the question in English and keys 4.
        assert await caller.wait_for(audio("en", "survey_rate"), timeout=30)
        assert caller.connected
        await caller.press("4")
        cause = await caller.wait_hangup(10)
        return bytes(caller.heard), cause

    try:
        heard, cause = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
        (facts,) = etiquette.call_etiquette(store, entry["call_id"])
        (summary,) = etiquette.agent_etiquette(store)
    finally:
        store.close()
    assert cause is not None  # the box hung up, after the thanks
    assert audio("en", "survey_thanks") in heard
    assert audio("zh", "survey_rate") not in heard and audio("yue", "survey_rate") not in heard
    assert entry["survey_score"] == 4 and entry["survey_status"] == "scored"
    assert entry["hung_up_first"] == "agent" and entry["agent"] == "A001"
    assert entry["ring_seconds"] == pytest.approx(6.0, abs=0.1) and entry["rings"] == 2
    assert facts.survey_score == 4 and facts.rings == 2 and facts.hold_count == 0
    assert summary.agent == "A001" and summary.calls == 1 and summary.mean_score == 4.0
    assert summary.answered_within_3_rings == 1 and summary.agent_hung_up_first == 1
    assert summary.caller_hung_up_first == 0
    survey = [d for kind, d in events if kind == "survey"]
    assert survey == [{"queue": "service", "entry": entry["key"], "seat": "s1",
                       "agent": "A001", "status": "scored", "score": 4}]


def test_a_wrong_key_is_asked_again_and_silence_twice_gives_no_score(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", wrap_up=0.5))
    flow = queue_flow(acd, "service", {"95502": "yue"})

    async def one_call(engine: Engine, ex: SimExchange, s1: CallerBot, keys: str) -> bytes:
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95502")
        assert await until(engine, lambda: s1.connected, 15)
        await caller.press("7")  # keyed while talking: not an answer to the survey
        await s1.hangup()
        for key in keys:
            assert await caller.wait_for(audio("yue", "survey_rate"), timeout=30)
            await caller.press(key)
        assert await caller.wait_hangup(60) is not None
        return bytes(caller.heard)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes]:
        s1 = seat_bot(ex, "8001")
        acd.login("s1", "A001")
        wrong_then_five = await one_call(engine, ex, s1, "95")
        await until(engine, lambda: acd.seats["s1"].state.value == "ready", 5)
        s1 = seat_bot(ex, "8001")
        silent = await one_call(engine, ex, s1, "")
        return wrong_then_five, silent

    try:
        first, second = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        rows = records.entries(store)
    finally:
        store.close()
    rate, invalid = audio("yue", "survey_rate"), audio("yue", "invalid_key")
    # One re-prompt after the wrong key, and the thanks.
    assert first.count(rate) == 2 and invalid + rate in first
    assert audio("yue", "survey_thanks") in first
    # Silence: asked twice (the second time after "no input"), then goodbye, no score.
    assert second.count(rate) == 2 and audio("yue", "no_input") + rate in second
    assert audio("yue", "goodbye") in second and audio("yue", "survey_thanks") not in second
    assert [(r["survey_status"], r["survey_score"]) for r in rows] == [("scored", 5),
                                                                      ("no-score", None)]


def test_caller_hangs_up_first_no_survey(tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", wrap_up=1.0))
    flow = queue_flow(acd, "service", {"95500": "zh"})
    events: list[str] = []
    acd.subscribe(lambda kind, data: events.append(kind))

    async def scenario(engine: Engine, ex: SimExchange) -> str | None:
        s1 = seat_bot(ex, "8001", answer_after=1.0)
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s1.connected, 15)
        await caller.wait(2)
        await caller.hangup()
        return await s1.wait_hangup(5)

    try:
        seat_cause = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
        (summary,) = etiquette.agent_etiquette(store)
    finally:
        store.close()
    assert seat_cause is not None  # the agent's phone was hung up by the box
    assert "survey" not in events
    assert entry["hung_up_first"] == "caller" and entry["survey_status"] is None
    assert entry["rings"] == 1 and entry["ring_seconds"] == pytest.approx(1.0, abs=0.1)
    assert summary.caller_hung_up_first == 1 and summary.surveys == 0
    assert summary.mean_score is None


def test_hold_plays_please_hold_and_music_reminds_the_agent_and_is_measured(
        tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", wrap_up=1.0))
    acd.hold_remind_after = 30.0
    flow = queue_flow(acd, "service", {"95500": "zh"})
    reminders: list[dict[str, Any]] = []
    acd.subscribe(lambda kind, data: reminders.append(data) if kind == "hold-reminder" else None)
    during, after = voice("agent-pass.wav"), voice("auth-thankyou.wav", seed=3)

    async def scenario(engine: Engine, ex: SimExchange) -> tuple[bytes, bytes, float]:
        s1 = seat_bot(ex, "8001")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s1.connected, 15)
        assert control.hold(acd, "s1") == 1
        with pytest.raises(Exception, match="already on hold"):
            acd.hold("s1")
        assert await caller.wait_for(audio("zh", "hold_please"), timeout=10)
        await caller.send(during)  # the agent must not hear this
        await caller.wait(70 - len(during) / 16000 - 5)
        seconds = control.unhold(acd, "s1")
        await caller.send(after)
        await caller.wait(0.5)
        await caller.hangup()
        await s1.wait_hangup(5)
        return bytes(caller.heard), bytes(s1.heard), seconds

    try:
        heard, agent_heard, seconds = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
        (hold,) = records.holds(store, entry["key"])
        (summary,) = etiquette.agent_etiquette(store)
    finally:
        store.close()
    assert b"".join(hold_tune().frames[:50]) in heard
    assert during not in agent_heard and after in agent_heard
    assert 60 < seconds < 75
    assert hold["seconds"] == pytest.approx(seconds, abs=0.05) and hold["reminders"] == 2
    assert [r["hold"] for r in reminders] == [1, 1]
    assert reminders[0]["held_seconds"] == pytest.approx(30.0, abs=0.1)
    assert entry["hold_count"] == 1 and entry["hold_seconds"] == pytest.approx(seconds, abs=0.05)
    assert summary.holds == 1 and summary.hold_reminders == 2
    assert summary.longest_hold_seconds == pytest.approx(seconds, abs=0.05)


def test_agent_leaving_a_caller_on_hold_ends_the_hold_and_the_survey_follows(
        tmp_path: Path) -> None:
    store, acd = open_acd(tmp_path, 1, QueueConfig("service", wrap_up=1.0))
    flow = queue_flow(acd, "service", {"95500": "zh"})

    async def scenario(engine: Engine, ex: SimExchange) -> bytes:
        s1 = seat_bot(ex, "8001")
        acd.login("s1", "A001")
        caller = CallerBot(ex, "13800138000")
        await caller.dial("95500")
        assert await until(engine, lambda: s1.connected, 15)
        acd.hold("s1")
        await caller.wait(12)
        await s1.hangup()
        assert await caller.wait_for(audio("zh", "survey_rate"), timeout=30)
        await caller.press("2")
        assert await caller.wait_hangup(10) is not None
        return bytes(caller.heard)

    try:
        heard = run_calls(tmp_path, store, acd, flow, scenario)
        flush(store)
        (entry,) = records.entries(store)
        (hold,) = records.holds(store, entry["key"])
        later = etiquette.agent_etiquette(store, since=entry["joined_at"] + 1)
        (now,) = etiquette.agent_etiquette(store, since=entry["joined_at"])
    finally:
        store.close()
    assert audio("zh", "survey_thanks") in heard
    assert entry["survey_score"] == 2 and entry["hung_up_first"] == "agent"
    assert hold["seconds"] == pytest.approx(12.0, abs=0.2) and hold["reminders"] == 0
    assert entry["hold_count"] == 1
    assert later == [] and now.calls == 1 and now.mean_score == 2.0
