"""Reminder calls end to end on the manual clock: the holder's phone rings on the simulated
exchange, the box's call-progress analysis hears them answer (or busy, or nothing), they
hear the personal message and key 1 as a real DTMF tone; every attempt is a row of the
attempt log with its call's CDR row and recording."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from appliance.acd import Acd, QueueConfig, records
from appliance.calls.clock import InlineExecutor
from appliance.calls.engine import Engine
from appliance.ivr.speech import speak_date, speak_digits, speak_money
from appliance.media.wavio import read_slin
from appliance.reminders import attempts as log
from appliance.reminders.attempts import all_attempts
from appliance.reminders.dialer import ReminderDialer
from appliance.store.db import Store
from drivers.base import Direction
from drivers.sim import SimExchange
from drivers.sim.exchange import Behaviour
from tests.acd.helpers import seat_bot, seats, until
from tests.reminders.helpers import (
    HELLO,
    MORNING,
    TODAY,
    add_policy,
    audio,
    holder,
    run_dialer,
    set_settings,
    subscribe,
)


def test_a_holder_hears_the_message_and_presses_1_to_confirm(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    due = TODAY + dt.timedelta(days=2)
    add_policy(store, "202601000042", "13900000001", due, amount_fen=123450)
    set_settings(store)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> bytes:
        bot = holder(ex, "13900000001", keys="1")
        result = await dialer.pass_once()
        assert result.started and result.due == 1 and result.outcomes == ["confirmed"]
        return bytes(bot.heard)

    try:
        heard = run_dialer(tmp_path, store, scenario)
        (row,) = all_attempts(store)
        (call,) = store.query("SELECT * FROM calls WHERE call_id = ?", [row["call_id"]])
    finally:
        store.close()
    # The personal message, byte for byte as the box's recordings say it, then the menu
    # and the thanks for the key.
    said = audio("zh", "rem_greeting", "rem_policy", *speak_digits("zh", "202601000042"),
                 "policy_product", "product_TL20", "rem_amount", *speak_money("zh", 123450),
                 "rem_due", *speak_date("zh", due))
    assert said in heard
    assert audio("zh", "rem_menu") in heard and audio("zh", "rem_confirmed") in heard
    assert row["outcome"] == "confirmed" and row["attempt"] == 1 and row["language"] == "zh"
    assert row["due_date"] == due.isoformat() and row["next_retry_at"] is None
    assert row["ended_at"] >= row["started_at"]
    assert call["direction"] == "out" and call["callee"] == "13900000001"
    assert call["answered_at"] is not None and "1" in call["keys"]
    stereo = read_slin(call["recording"], channels=2).reshape(-1, 2)
    assert audio("zh", "rem_greeting") in stereo[:, 1].tobytes()  # what the box said


def test_the_message_is_in_the_holders_language_and_says_overdue(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    due = TODAY - dt.timedelta(days=5)
    add_policy(store, "202601000043", "13900000002", due, language="yue", amount_fen=50000)
    set_settings(store)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> bytes:
        bot = holder(ex, "13900000002", lang="yue")
        assert (await dialer.pass_once()).outcomes == ["heard"]
        return bytes(bot.heard)

    try:
        heard = run_dialer(tmp_path, store, scenario)
        (row,) = all_attempts(store)
    finally:
        store.close()
    said = audio("yue", "rem_amount", *speak_money("yue", 50000), "rem_due",
                 *speak_date("yue", due), "rem_overdue")
    assert said in heard and audio("yue", "rem_goodbye") in heard
    assert audio("zh", "rem_greeting") not in heard
    assert row["outcome"] == "heard" and row["language"] == "yue"


def test_busy_and_unanswered_holders_are_tried_again_until_the_attempts_run_out(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    add_policy(store, "202601000050", "13900000010", TODAY + dt.timedelta(days=1))
    add_policy(store, "202601000051", "13900000011", TODAY + dt.timedelta(days=1))
    add_policy(store, "202601000052", "13900000012", TODAY + dt.timedelta(days=1))
    set_settings(store, retry_minutes=1, max_attempts=2)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> list[int]:
        subscribe(ex, "13900000010", Behaviour.BUSY)
        subscribe(ex, "13900000011", Behaviour.NO_ANSWER)
        subscribe(ex, "13900000012", Behaviour.CONGESTION)
        first = await dialer.pass_once()
        assert sorted(first.outcomes) == ["busy", "congested", "no_answer"]
        # Before the retry delay nobody is called again.
        early = await dialer.pass_once()
        assert early.due == 0 and early.outcomes == []
        await engine.wait_ticks(None, 61 * 50)
        second = await dialer.pass_once()
        assert sorted(second.outcomes) == ["busy", "congested", "no_answer"]
        await engine.wait_ticks(None, 61 * 50)
        last = await dialer.pass_once()
        return [first.due, second.due, last.due]

    try:
        dues = run_dialer(tmp_path, store, scenario)
        rows = all_attempts(store)
        calls = store.query("SELECT * FROM calls WHERE direction = 'out' ORDER BY started_at")
    finally:
        store.close()
    assert dues == [3, 3, 0]  # the third pass finds every policy out of attempts
    by_policy: dict[str, list[dict]] = {}
    for r in rows:
        by_policy.setdefault(r["policy_number"], []).append(r)
    for number, outcome in (("202601000050", "busy"), ("202601000051", "no_answer"),
                            ("202601000052", "congested")):
        first, second = by_policy[number]
        assert (first["attempt"], second["attempt"]) == (1, 2)
        assert first["outcome"] == second["outcome"] == outcome
        assert first["next_retry_at"] == first["ended_at"] + 60  # the delay, then again
        assert second["next_retry_at"] is None  # the last attempt: none after it
        assert second["started_at"] >= first["next_retry_at"]
    assert len(calls) == 6 and all(c["answered_at"] is None for c in calls)
    assert {c["end_cause"] for c in calls} == {"busy", "no-answer", "congestion"}


def test_a_reminder_the_calls_never_delivered_goes_by_sms_when_the_box_says_so(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    add_policy(store, "202601000055", "13900000015", TODAY - dt.timedelta(days=2),
               language="yue", amount_fen=123450)
    add_policy(store, "202601000056", "13900000016", TODAY)  # answers: no SMS
    set_settings(store, retry_minutes=1, max_attempts=2, sms_after_calls=True)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> None:
        subscribe(ex, "13900000015", Behaviour.BUSY)
        holder(ex, "13900000016", keys="1")
        await dialer.pass_once()
        await engine.wait_ticks(None, 61 * 50)
        await dialer.pass_once()

    try:
        run_dialer(tmp_path, store, scenario)
        rows = {(r["policy_number"], r["attempt"]): r for r in all_attempts(store)}
        sms = store.query("SELECT * FROM sms_messages")
    finally:
        store.close()
    # Only after the last attempt, and only for the holder nobody reached on a mobile.
    assert rows[("202601000055", 1)]["sms_id"] is None
    (message,) = sms
    assert rows[("202601000055", 2)]["sms_id"] == message["id"]
    assert (message["direction"], message["number"], message["status"]) == (
        "out", "13900000015", "queued")  # the SMS service sends it
    assert message["text"] == ("【續期繳費提示】尊貴的客戶，您的保單202601000055保費1234.50元"
                               f"已於{(TODAY - dt.timedelta(days=2)).year}年"
                               f"{(TODAY - dt.timedelta(days=2)).month}月"
                               f"{(TODAY - dt.timedelta(days=2)).day}日到期，"
                               "請及時繳費，以免影響保障。如有查詢，請致電本公司客戶服務熱線。")
    assert rows[("202601000056", 1)]["outcome"] == "confirmed"
    assert rows[("202601000056", 1)]["sms_id"] is None


def test_an_sms_the_modem_could_not_take_still_closes_the_attempt(tmp_path: Path) -> None:
    with Store(tmp_path / "appliance.db") as store:
        key = log.Attempt("202601000058", TODAY.isoformat(), 1)
        log.open_attempt(store, key, number="x", language="zh", started_at=1.0).result()
        sms_id = log.close_attempt(store, key, outcome="busy", ended_at=2.0, call_id=None,
                                   detail="", sms=("not a number", "text")).result()
        (row,) = all_attempts(store)
        assert sms_id is None and not store.query("SELECT * FROM sms_messages")
    assert row["outcome"] == "busy" and row["detail"].startswith("no SMS: ")


def test_a_holder_who_hangs_up_during_the_message_is_tried_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    add_policy(store, "202601000060", "13900000020", TODAY)
    set_settings(store, retry_minutes=5)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> None:
        holder(ex, "13900000020", hang_up_after=2.0)
        assert (await dialer.pass_once()).outcomes == ["hung_up"]

    try:
        run_dialer(tmp_path, store, scenario)
        (row,) = all_attempts(store)
    finally:
        store.close()
    assert row["outcome"] == "hung_up" and row["next_retry_at"] == row["ended_at"] + 300


def test_no_call_outside_the_window_or_on_a_holiday(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    add_policy(store, "202601000070", "13900000030", TODAY + dt.timedelta(days=1))
    set_settings(store, window_start="09:00", window_end="20:00")

    def scenario_at(moment: dt.datetime) -> dict:
        async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> dict:
            holder(ex, "13900000030", keys="1")
            return await dialer.run_now()

        return run_dialer(tmp_path, store, scenario, start=moment)

    try:
        evening = scenario_at(MORNING.replace(hour=20, minute=0))
        early = scenario_at(MORNING.replace(hour=8, minute=59))
        store.write(lambda db: db.execute(
            "INSERT INTO holidays (date, name, kind) VALUES (?, '测试节', 'holiday')",
            [TODAY.isoformat()]))
        holiday = scenario_at(MORNING)
        calls = store.query("SELECT count(*) AS n FROM calls")[0]["n"]
        rows = all_attempts(store)
    finally:
        store.close()
    assert not evening["started"] and "20:00 is outside the calling window" in evening["reason"]
    assert not early["started"] and "08:59" in early["reason"]
    assert not holiday["started"] and "public holiday (测试节)" in holiday["reason"]
    assert calls == 0 and rows == []


def test_at_most_k_calls_at_once_and_never_on_a_trunk_kept_for_inbound(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    numbers = [f"139000001{i:02d}" for i in range(6)]
    for i, number in enumerate(numbers):
        add_policy(store, f"20260100008{i}", number, TODAY + dt.timedelta(days=1))
    set_settings(store, max_concurrent=2)

    async def scenario(engine: Engine, ex: SimExchange,
                       dialer: ReminderDialer) -> tuple[int, set[int], list[str]]:
        ex.reserve_inbound(frozenset({"1", "2", "3"}))
        for number in numbers:
            holder(ex, number, hang_up_after=1.0)
        most, trunks = 0, set()
        task = asyncio.ensure_future(dialer.pass_once())
        while not task.done():
            out = [line for line in ex.lines.values() if line.direction is Direction.OUTBOUND]
            most = max(most, len(out))
            trunks |= {line.trunk for line in out}
            await engine.wait_ticks(None, 1)
        return most, trunks, task.result().outcomes

    try:
        most, trunks, outcomes = run_dialer(tmp_path, store, scenario, trunks=5)
    finally:
        store.close()
    assert outcomes == ["hung_up"] * 6
    assert most == 2
    assert trunks and trunks <= {4, 5}


def test_pressing_2_hands_the_holder_to_the_service_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    add_policy(store, "202601000090", "13900000090", TODAY, language="en")
    set_settings(store)
    acd = Acd(seats(1), [QueueConfig("service")], store=store, executor=InlineExecutor(),
              messages_dir=tmp_path / "messages")

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> list[str]:
        agent = seat_bot(ex, "8001")
        acd.login("s1", "A001")
        bot = holder(ex, "13900000090", lang="en", keys="2")
        task = asyncio.ensure_future(dialer.pass_once())
        assert await until(engine, lambda: agent.connected, 90)
        await bot.send(HELLO)  # the holder talks to the agent
        await agent.wait(1.0)
        await bot.hangup()
        return (await task).outcomes

    try:
        outcomes = run_dialer(tmp_path, store, scenario, acd=acd)
        (row,) = all_attempts(store)
        (entry,) = records.entries(store)
    finally:
        store.close()
    assert outcomes == ["transferred"]
    assert row["outcome"] == "transferred" and row["detail"].startswith("queue service")
    assert entry["call_id"] == row["call_id"] and entry["answered_by"] == "s1"
    assert entry["language"] == "en"


def test_a_stop_ends_the_pass_and_an_attempt_left_open_is_failed(tmp_path: Path) -> None:
    store = Store(tmp_path / "appliance.db")
    numbers = [f"1390000020{i}" for i in range(3)]
    for i, number in enumerate(numbers):
        add_policy(store, f"20260100020{i}", number, TODAY)
    add_policy(store, "202601000299", "13900000299", TODAY - dt.timedelta(days=1))
    # An attempt a crash left open (no outcome): failed at the next start, not "ringing".
    log.open_attempt(store, log.Attempt("202601000299", (TODAY - dt.timedelta(days=1))
                                        .isoformat(), 1), number="13900000299",
                     language="zh", started_at=1.0).result()
    set_settings(store, max_concurrent=1, window_end="24:00")

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> None:
        bots = [holder(ex, number) for number in numbers]
        serving = asyncio.ensure_future(dialer.serve(interval=3600))
        assert await until(engine, lambda: any(b.connected for b in bots), 30)
        engine.stop()
        await serving

    try:
        run_dialer(tmp_path, store, scenario)
        rows = all_attempts(store)
    finally:
        store.close()
    left, cut = rows
    assert left["outcome"] == "failed" and left["detail"] == log.INTERRUPTED
    assert cut["outcome"] == "failed" and cut["detail"] == "shutdown"
    assert cut["next_retry_at"] is not None  # tried again at the next start


@pytest.mark.parametrize(("keys", "greetings", "invalid"), [("91", 2, 0), ("51", 1, 1)])
def test_9_repeats_the_message_and_a_wrong_key_asks_again(
        tmp_path: Path, keys: str, greetings: int, invalid: int) -> None:
    store = Store(tmp_path / "appliance.db")
    add_policy(store, "202601000400", "13900000400", TODAY)
    set_settings(store)

    async def scenario(engine: Engine, ex: SimExchange, dialer: ReminderDialer) -> bytes:
        bot = holder(ex, "13900000400", keys=keys)
        assert (await dialer.pass_once()).outcomes == ["confirmed"]
        return bytes(bot.heard)

    try:
        heard = run_dialer(tmp_path, store, scenario)
    finally:
        store.close()
    assert heard.count(audio("zh", "rem_greeting")) == greetings
    assert heard.count(audio("zh", "invalid_key")) == invalid
    assert heard.count(audio("zh", "rem_menu")) == 2
